"""The unmodified tritonclient (from NPUK_UPSTREAM_DIR's
triton-inference-server+client sources) doing system shared-memory inputs
and outputs against a real npukd over gRPC (and HTTP when the daemon serves
REST), byte-identical to plain gRPC. tritonclient.utils.shared_memory in
these sources is pure Python (multiprocessing.shared_memory), so no C
library is built. Skipped, with the reason, without the sources."""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "shm"))
import shm_env as env  # noqa: E402

UPSTREAM = os.environ.get("NPUK_UPSTREAM_DIR", "")
CLIENT_SRC = os.path.join(UPSTREAM, "triton-inference-server+client")
COMMON_SRC = os.path.join(UPSTREAM, "triton-inference-server+common")
LIBRARY = os.path.join(CLIENT_SRC, "src", "python", "library")
PROTO_DIR = os.path.join(COMMON_SRC, "protobuf")


def _missing():
    if not env.DAEMON:
        return "set NPUKD to the npukd binary (ctest does)"
    if not UPSTREAM:
        return "NPUK_UPSTREAM_DIR is not set (scripts/upstream-sources.sh)"
    for p in (os.path.join(LIBRARY, "tritonclient"),
              os.path.join(PROTO_DIR, "grpc_service.proto")):
        if not os.path.exists(p):
            return "%s is missing (scripts/upstream-sources.sh)" % p
    return None


@pytest.fixture(scope="module")
def tritonclient():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    tmp = tempfile.mkdtemp(prefix="npuk-tritonclient-")
    try:
        shutil.copytree(os.path.join(LIBRARY, "tritonclient"),
                        os.path.join(tmp, "tritonclient"))
        out = os.path.join(tmp, "tritonclient", "grpc")
        # The stubs tritonclient's build generates: service_pb2 from
        # grpc_service.proto, beside model_config_pb2.
        shutil.copy(os.path.join(PROTO_DIR, "grpc_service.proto"),
                    os.path.join(tmp, "service.proto"))
        shutil.copy(os.path.join(PROTO_DIR, "model_config.proto"),
                    os.path.join(tmp, "model_config.proto"))
        subprocess.run(
            ["protoc", "-I" + tmp, "--python_out=" + out,
             "--grpc_python_out=" + out,
             "--plugin=protoc-gen-grpc_python=" +
             shutil.which("grpc_python_plugin"),
             os.path.join(tmp, "service.proto"),
             os.path.join(tmp, "model_config.proto")], check=True)
        for f in ("service_pb2.py", "service_pb2_grpc.py"):
            p = os.path.join(out, f)
            text = open(p).read()
            text = text.replace("import model_config_pb2",
                                "from tritonclient.grpc import "
                                "model_config_pb2")
            text = text.replace("import service_pb2",
                                "from tritonclient.grpc import service_pb2")
            open(p, "w").write(text)
        sys.path.insert(0, tmp)
        import tritonclient.grpc as grpcclient
        import tritonclient.utils.shared_memory as shm
        yield grpcclient, shm
    finally:
        if tmp in sys.path:
            sys.path.remove(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(tritonclient):
    grpcclient, _ = tritonclient

    def serving(target):
        c = grpcclient.InferenceServerClient(url=target)
        try:
            return c.is_server_ready()
        except Exception:  # not up yet: any tritonclient error
            return False
        finally:
            c.close()
    with env.daemon(serving=serving) as d:
        yield d


def _models(client):
    """[(name, ModelMetadataResponse)] through tritonclient."""
    return [(m.name, client.get_model_metadata(m.name))
            for m in client.get_model_repository_index().models]


def test_shared_memory_inputs_and_outputs_every_model(tritonclient, daemon):
    grpcclient, shm = tritonclient
    # tritonclient hands the URL to grpc as is: unix:PATH works.
    client = grpcclient.InferenceServerClient(url=daemon[0])
    checked = []
    try:
        client.unregister_system_shared_memory()
        for model, meta in _models(client):
            if model == "log_mel":  # [S] audio; tests/shm covers it
                continue
            # attention as [5, 100, 64] sequences (its host model).
            inputs = env.random_inputs(meta, 5, seed=len(checked) + 11,
                                       length=100)
            if inputs is None:
                continue
            out = meta.outputs[0]
            # Plain gRPC: the bytes in the message.
            raw = []
            for name, (datatype, a) in inputs.items():
                t = grpcclient.InferInput(name, list(a.shape), datatype)
                t.set_data_from_numpy(a)
                raw.append(t)
            plain = client.infer(model, raw)
            want = plain.as_numpy(out.name).tobytes()
            plain_shape = list(plain.get_output(out.name).shape)

            in_bytes = sum(a.nbytes for _, a in inputs.values())
            key = "/npuk_tc_in_%d_%s" % (os.getpid(), model)
            okey = "/npuk_tc_out_%d_%s" % (os.getpid(), model)
            h_in = shm.create_shared_memory_region("in_" + model, key,
                                                   in_bytes)
            h_out = shm.create_shared_memory_region("out_" + model, okey,
                                                    len(want))
            try:
                offset, tensors = 0, []
                for name, (datatype, a) in inputs.items():
                    shm.set_shared_memory_region(h_in, [a], offset=offset)
                    t = grpcclient.InferInput(name, list(a.shape), datatype)
                    t.set_shared_memory("in_" + model, a.nbytes,
                                        offset=offset)
                    tensors.append(t)
                    offset += a.nbytes
                client.register_system_shared_memory("in_" + model, key,
                                                     in_bytes)
                client.register_system_shared_memory("out_" + model, okey,
                                                     len(want))
                status = client.get_system_shared_memory_status()
                names = {r.name for r in status.regions.values()}
                assert {"in_" + model, "out_" + model} <= names
                o = grpcclient.InferRequestedOutput(out.name)
                o.set_shared_memory("out_" + model, len(want))
                result = client.infer(model, tensors, outputs=[o])
                got = result.get_output(out.name)
                assert list(got.shape) == plain_shape
                arr = shm.get_contents_as_numpy(
                    h_out, env.NP[out.datatype], list(got.shape))
                assert arr.tobytes() == want, model
                # Inputs in shared memory, output as raw bytes.
                result = client.infer(model, tensors)
                assert result.as_numpy(out.name).tobytes() == want
            finally:
                client.unregister_system_shared_memory("in_" + model)
                client.unregister_system_shared_memory("out_" + model)
                shm.destroy_shared_memory_region(h_in)
                shm.destroy_shared_memory_region(h_out)
            checked.append(model)
        assert len(client.get_system_shared_memory_status().regions) == 0
    finally:
        client.close()
    print("tritonclient shared memory, models:", checked)
    assert {"mel", "attention", "passthrough"} <= set(checked)


def test_shared_memory_errors_reach_tritonclient(tritonclient, daemon):
    grpcclient, shm = tritonclient
    from tritonclient.utils import InferenceServerException
    client = grpcclient.InferenceServerClient(url=daemon[0])
    try:
        with pytest.raises(InferenceServerException) as e:
            client.register_system_shared_memory("x", "/npuk_not_there", 64)
        assert "create it first" in str(e.value)
        t = grpcclient.InferInput("audio", [1, 400], "INT16")
        t.set_shared_memory("never_registered", 800)
        with pytest.raises(InferenceServerException) as e:
            client.infer("mel", [t])
        assert "not registered" in str(e.value)
    finally:
        client.close()


def _free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_shared_memory_over_http(tritonclient):
    """tritonclient.http with shared-memory inputs and outputs, compared
    with the same tensors sent plainly over gRPC."""
    grpcclient, shm = tritonclient
    help_text = subprocess.run([env.DAEMON, "--help"], capture_output=True,
                               text=True).stdout
    if "--http" not in help_text:
        pytest.skip("this npukd has no --http (KServe REST) flag")
    try:
        import tritonclient.http as httpclient
    except ImportError as e:
        pytest.skip("tritonclient.http needs %s (python3-geventhttpclient)" % e)
    port = _free_port()

    def serving(target):
        c = grpcclient.InferenceServerClient(url=target)
        try:
            return c.is_server_ready()
        except Exception:  # not up yet
            return False
        finally:
            c.close()
    with env.daemon("--http=127.0.0.1:%d" % port, serving=serving) as d:
        g = grpcclient.InferenceServerClient(url=d[0])
        h = httpclient.InferenceServerClient(url="127.0.0.1:%d" % port)
        rng = np.random.default_rng(9)
        audio = rng.integers(-32768, 32767, size=(7, 400), dtype=np.int16)
        t = grpcclient.InferInput("audio", [7, 400], "INT16")
        t.set_data_from_numpy(audio)
        want = g.infer("mel", [t]).as_numpy("log_mel").tobytes()
        h_in = shm.create_shared_memory_region(
            "h_in", "/npuk_tch_in_%d" % os.getpid(), audio.nbytes)
        h_out = shm.create_shared_memory_region(
            "h_out", "/npuk_tch_out_%d" % os.getpid(), len(want))
        try:
            shm.set_shared_memory_region(h_in, [audio])
            h.register_system_shared_memory(
                "h_in", "/npuk_tch_in_%d" % os.getpid(), audio.nbytes)
            h.register_system_shared_memory(
                "h_out", "/npuk_tch_out_%d" % os.getpid(), len(want))
            status = h.get_system_shared_memory_status()
            assert {r["name"] for r in status} >= {"h_in", "h_out"}
            i = httpclient.InferInput("audio", [7, 400], "INT16")
            i.set_shared_memory("h_in", audio.nbytes)
            o = httpclient.InferRequestedOutput("log_mel")
            o.set_shared_memory("h_out", len(want))
            h.infer("mel", [i], outputs=[o])
            got = shm.get_contents_as_numpy(h_out, np.int8, [7, 80])
            assert got.tobytes() == want
        finally:
            h.unregister_system_shared_memory()
            shm.destroy_shared_memory_region(h_in)
            shm.destroy_shared_memory_region(h_out)
            h.close()
            g.close()

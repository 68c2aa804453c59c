"""npukd's log_mel model against openai/whisper's own audio.py (run from its
source, never reimplemented): speech in several voices and speeds, speech at
-40 dBFS, clipped speech, tones, low-level noise, leading silence,
transcribe()'s padded call and a 10-minute recording, for 80 and 128 bands,
through a plain gRPC request (FP32, and INT16 where the signal is int16),
the Python client (array and WAV path) and the C++ client (npukctl).

Bounds, in Whisper's normalised units: max |d| <= 0.02, mean |d| <= 0.006,
and correlation >= 0.9995 where the reference varies (std >= 0.1). The
figures are printed as a table at the end of the run."""

from __future__ import annotations

import os
import subprocess
from types import ModuleType
from typing import Dict, Iterator, List, Tuple

import grpc
import numpy as np
import pytest

import npuk
from npuk._proto import grpc_service_pb2 as pb
from npuk._proto import grpc_service_pb2_grpc as pb_grpc

import conftest
from conftest import Signal, write_wav_float, write_wav_int16
from npukd_process import Npukd

SIGNALS = ["speech en-us 175wpm", "speech en-gb+f3 130wpm",
           "speech en-us+m7 260wpm", "speech en-gb-scotland+f5 200wpm",
           "speech -40 dBFS", "speech clipped", "tones + sweep",
           "noise -80 dBFS", "leading silence", "padded (transcribe)",
           "10 min speech"]
TIMEOUT = 300.0


@pytest.fixture(scope="module")
def daemon(npukd_binary: str, whisper_audio: ModuleType) -> Iterator[Npukd]:
    with Npukd(npukd_binary, ["--backend=cpu"]) as d:
        yield d


@pytest.fixture(scope="module")
def stub(daemon: Npukd) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(daemon.target, options=[
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1)])
    yield pb_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


def raw_request(audio: np.ndarray, n_mels: int, padding: int,
                datatype: str) -> pb.ModelInferRequest:
    """The request any KServe v2 client would build by hand."""
    req = pb.ModelInferRequest(model_name="log_mel")
    t = req.inputs.add()
    t.name, t.datatype = "audio", datatype
    t.shape.append(audio.size)
    dtype = "<f4" if datatype == "FP32" else "<i2"
    req.raw_input_contents.append(audio.astype(dtype).tobytes())
    req.parameters["n_mels"].int64_param = n_mels
    req.parameters["padding"].int64_param = padding
    return req


def raw_features(stub: pb_grpc.GRPCInferenceServiceStub,
                 req: pb.ModelInferRequest) -> np.ndarray:
    resp = stub.ModelInfer(req, timeout=TIMEOUT)
    [out] = [o for o in resp.outputs if o.name == "features"]
    assert out.datatype == "FP32"
    return np.frombuffer(resp.raw_output_contents[0], "<f4").reshape(
        tuple(out.shape))


def compare(name: str, n_mels: int, path: str, ours: np.ndarray,
            ref: np.ndarray) -> Tuple[float, float, float, float]:
    assert ours.shape == ref.shape, (path, ours.shape, ref.shape)
    d = np.abs(ours.astype(np.float64) - ref)
    std = float(ref.std())
    corr = float(np.corrcoef(ours.ravel(), ref.ravel())[0, 1]) \
        if std >= 0.1 else float("nan")
    conftest.ROWS.append((name, str(n_mels), path, str(ref.shape[1]),
                          "%.4f" % d.max(), "%.5f" % d.mean(), "%.3f" % std,
                          "-" if std < 0.1 else "%.6f" % corr))
    return float(d.max()), float(d.mean()), std, corr


def within_bounds(figures: Tuple[float, float, float, float]) -> bool:
    mx, mean, std, corr = figures
    return mx <= 0.02 and mean <= 0.006 and (std < 0.1 or corr >= 0.9995)


def npukctl_features(daemon: Npukd, wav: str, n_mels: int, padding: int,
                     out: str) -> np.ndarray:
    binary = os.environ.get("NPUKCTL", "")
    if not binary:
        pytest.fail("set NPUKCTL to the npukctl binary (ctest does)")
    r = subprocess.run([binary, "infer", "--target=" + daemon.target,
                        "--timeout=%ds" % TIMEOUT, "--wav=" + wav,
                        "--n_mels=%d" % n_mels, "--padding=%d" % padding,
                        "--output=" + out], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return np.fromfile(out, dtype="<f4")


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("name", SIGNALS)
def test_log_mel_matches_whisper(name: str, n_mels: int,
                                 signals: Dict[str, Signal],
                                 whisper_audio: ModuleType, daemon: Npukd,
                                 stub: pb_grpc.GRPCInferenceServiceStub,
                                 tmp_path) -> None:
    s = signals[name]
    ref = whisper_audio.log_mel_spectrogram(s.audio, n_mels, s.padding) \
        .numpy().astype(np.float64)
    assert ref.shape == (n_mels, (s.audio.size + s.padding) // 160)
    results: Dict[str, np.ndarray] = {}
    results["grpc FP32"] = raw_features(
        stub, raw_request(s.audio, n_mels, s.padding, "FP32"))
    if s.pcm is not None:
        results["grpc INT16"] = raw_features(
            stub, raw_request(s.pcm, n_mels, s.padding, "INT16"))
    with npuk.Client(daemon.target, timeout=TIMEOUT) as c:
        py = c.log_mel_spectrogram(s.audio, n_mels, s.padding)
        assert type(py).__module__.startswith("torch"), type(py)
        results["python array"] = py.numpy()
        wav = str(tmp_path / "int16.wav")
        if s.pcm is not None:
            write_wav_int16(wav, s.pcm)
            # A path, as whisper takes it: read by the stdlib wave module,
            # sent as INT16.
            results["python path"] = c.log_mel_spectrogram(
                wav, n_mels, s.padding).numpy()
    fwav = str(tmp_path / "float.wav")
    write_wav_float(fwav, s.audio)
    results["c++ npukctl"] = npukctl_features(
        daemon, fwav, n_mels, s.padding, str(tmp_path / "features.f32")
    ).reshape(ref.shape)

    failures: List[str] = []
    for path, ours in results.items():
        figures = compare(name, n_mels, path, ours, ref)
        if not within_bounds(figures):
            failures.append("%s: max %.4f mean %.5f std %.3f corr %.6f"
                            % ((path,) + figures))
    # The same FP32 bytes make the same features, whichever client sent them.
    np.testing.assert_array_equal(results["python array"],
                                  results["grpc FP32"])
    np.testing.assert_array_equal(results["c++ npukctl"],
                                  results["grpc FP32"])
    assert not failures, "%s, n_mels %d: %s" % (name, n_mels, failures)

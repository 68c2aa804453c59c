"""The gRPC surface beyond inference, on a real npukd: ServerMetadata has
the project version, health answers for the fully qualified service name,
reflection v1 and v1alpha both work, and every RPC of Triton's service that
npukd does not serve is UNIMPLEMENTED with a message naming what is not
supported and what to use instead."""
import os

import grpc
import pytest
from google.protobuf import descriptor_pb2

import daemon
from npuk._proto import grpc_service_pb2 as pb
from npuk._proto import grpc_service_pb2_grpc as pb_grpc
from npuk._proto import health_pb2, health_pb2_grpc
from npuk._proto import reflection_v1_pb2 as refl

VERSION = os.environ.get("NPUK_VERSION", "")


@pytest.fixture(scope="module")
def npukd():
    with daemon.running() as d:
        yield d


def test_server_metadata_has_the_project_version(npukd) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(npukd.channel)
    md = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
    assert VERSION and md.version == VERSION
    assert md.name == "npukd"


def test_health_for_the_fully_qualified_service_name(npukd) -> None:
    stub = health_pb2_grpc.HealthStub(npukd.channel)
    full = stub.Check(health_pb2.HealthCheckRequest(
        service="inference.GRPCInferenceService"), timeout=10)
    assert full.status == health_pb2.HealthCheckResponse.SERVING
    watch = stub.Watch(health_pb2.HealthCheckRequest(
        service="inference.GRPCInferenceService"), timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    with pytest.raises(grpc.RpcError) as e:
        stub.Check(health_pb2.HealthCheckRequest(service="inference"),
                   timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "inference.GRPCInferenceService" in e.value.details()


def reflect(channel: grpc.Channel, package: str,
            *requests: refl.ServerReflectionRequest) -> list:
    """Sends `requests` on one stream of `package`'s ServerReflection; v1
    and v1alpha share the message layout, so v1's classes serve both."""
    call = channel.stream_stream(
        f"/{package}.ServerReflection/ServerReflectionInfo",
        request_serializer=refl.ServerReflectionRequest.SerializeToString,
        response_deserializer=refl.ServerReflectionResponse.FromString)
    return list(call(iter(requests), timeout=10))


@pytest.mark.parametrize("package", ["grpc.reflection.v1",
                                     "grpc.reflection.v1alpha"])
def test_reflection_lists_services_and_describes_them(npukd,
                                                      package: str) -> None:
    (listed,) = reflect(npukd.channel, package,
                        refl.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names, names

    (described,) = reflect(
        npukd.channel, package,
        refl.ServerReflectionRequest(
            file_containing_symbol="inference.GRPCInferenceService"))
    files = {}
    for raw in described.file_descriptor_response.file_descriptor_proto:
        f = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[f.name] = f
    assert "grpc_service.proto" in files, files.keys()
    service = next(s for s in files["grpc_service.proto"].service
                   if s.name == "GRPCInferenceService")
    methods = {m.name for m in service.method}
    assert {"ModelInfer", "ModelStreamInfer", "ServerMetadata"} <= methods
    # Dependencies come along (or were sent before on the stream).
    assert "model_config.proto" in files


def test_reflection_v1_errors_and_files(npukd) -> None:
    missing, by_name, method = reflect(
        npukd.channel, "grpc.reflection.v1",
        refl.ServerReflectionRequest(file_containing_symbol="no.Such"),
        refl.ServerReflectionRequest(file_by_filename="health.proto"),
        refl.ServerReflectionRequest(
            file_containing_symbol="inference.GRPCInferenceService.ModelInfer"))
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no.Such" in missing.error_response.error_message
    assert missing.original_request.file_containing_symbol == "no.Such"
    names = [descriptor_pb2.FileDescriptorProto.FromString(raw).name
             for raw in by_name.file_descriptor_response.file_descriptor_proto]
    assert names == ["health.proto"]
    # A method name finds its file too.
    names = [descriptor_pb2.FileDescriptorProto.FromString(raw).name
             for raw in method.file_descriptor_response.file_descriptor_proto]
    assert "grpc_service.proto" in names
    (empty,) = reflect(npukd.channel, "grpc.reflection.v1",
                       refl.ServerReflectionRequest())
    assert empty.error_response.error_code == \
        grpc.StatusCode.INVALID_ARGUMENT.value[0]


UNSUPPORTED = [
    ("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="mel"),
     ["RepositoryModelLoad is not supported", "enabled", "config", "restart"]),
    ("RepositoryModelUnload",
     pb.RepositoryModelUnloadRequest(model_name="mel"),
     ["RepositoryModelUnload is not supported", "enabled: false"]),
    ("CudaSharedMemoryStatus", pb.CudaSharedMemoryStatusRequest(),
     ["CUDA shared memory is not supported", "SystemSharedMemoryRegister"]),
    ("CudaSharedMemoryRegister",
     pb.CudaSharedMemoryRegisterRequest(name="r", byte_size=64),
     ["CUDA shared memory is not supported", "raw_input_contents"]),
    ("CudaSharedMemoryUnregister",
     pb.CudaSharedMemoryUnregisterRequest(name="r"),
     ["CUDA shared memory is not supported"]),
    ("TraceSetting", pb.TraceSettingRequest(),
     ["TraceSetting is not supported", "ModelStatistics", "--metrics"]),
    ("LogSettings", pb.LogSettingsRequest(),
     ["LogSettings is not supported", "--log_level"]),
]


@pytest.mark.parametrize("method,request_,texts", UNSUPPORTED,
                         ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_rpcs_say_what_to_use(npukd, method: str, request_,
                                          texts: list) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(npukd.channel)
    with pytest.raises(grpc.RpcError) as e:
        getattr(stub, method)(request_, timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    for text in texts:
        assert text in e.value.details(), (text, e.value.details())


def test_every_declared_rpc_is_served_or_explained(npukd) -> None:
    """No RPC of the proto answers gRPC's bare UNIMPLEMENTED (empty
    message): a new RPC needs a handler or an explanation."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    stub = pb_grpc.GRPCInferenceServiceStub(npukd.channel)
    for m in service.methods:
        if m.client_streaming or m.server_streaming:
            continue
        request_class = getattr(pb, m.input_type.name)
        try:
            getattr(stub, m.name)(request_class(), timeout=10)
        except grpc.RpcError as e:
            assert e.details(), f"{m.name}: {e.code()} with no message"

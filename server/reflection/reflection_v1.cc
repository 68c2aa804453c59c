#include "server/reflection/reflection_v1.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace npuk {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using grpc::reflection::v1::ServerReflectionRequest;
using grpc::reflection::v1::ServerReflectionResponse;

// Longest piece of a client's symbol or file name quoted in an error.
constexpr size_t kMaxQuoted = 128;

std::string Quoted(const std::string& s) {
  if (s.size() <= kMaxQuoted) return s;
  return absl::StrCat(s.substr(0, kMaxQuoted), "...");
}

void Error(ServerReflectionResponse* r, grpc::StatusCode code,
           std::string message) {
  r->mutable_error_response()->set_error_code(static_cast<int>(code));
  r->mutable_error_response()->set_error_message(std::move(message));
}

// `file` and its transitive dependencies not in `sent`, dependencies
// first.
void AddFile(const FileDescriptor* file, std::set<std::string>* sent,
             ServerReflectionResponse* r) {
  if (!sent->insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFile(file->dependency(i), sent, r);
  }
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(
      r->mutable_file_descriptor_response()->add_file_descriptor_proto());
}

}  // namespace

ReflectionV1Service::ReflectionV1Service(std::vector<std::string> services)
    : services_(std::move(services)) {
  services_.push_back(
      grpc::reflection::v1::ServerReflection::service_full_name());
  services_.push_back("grpc.reflection.v1alpha.ServerReflection");
}

ServerReflectionResponse ReflectionV1Service::Answer(
    const ServerReflectionRequest& request, std::set<std::string>* sent) const {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  ServerReflectionResponse r;
  r.set_valid_host(request.host());
  *r.mutable_original_request() = request;
  // A file already sent on this stream is sent again when asked for by
  // name or symbol: the client asked, so it does not have it at hand.
  std::set<std::string> deps = *sent;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& s : services_) {
        r.mutable_list_services_response()->add_service()->set_name(s);
      }
      break;
    case ServerReflectionRequest::kFileByFilename: {
      const FileDescriptor* f =
          pool->FindFileByName(request.file_by_filename());
      if (f == nullptr) {
        Error(&r, grpc::StatusCode::NOT_FOUND,
              absl::StrCat("no file '", Quoted(request.file_by_filename()),
                           "'; ask for a symbol (file_containing_symbol) or "
                           "list the services first"));
        break;
      }
      deps.erase(f->name());
      AddFile(f, &deps, &r);
      break;
    }
    case ServerReflectionRequest::kFileContainingSymbol: {
      const FileDescriptor* f =
          pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (f == nullptr) {
        Error(&r, grpc::StatusCode::NOT_FOUND,
              absl::StrCat("no symbol '",
                           Quoted(request.file_containing_symbol()),
                           "'; use a fully qualified name such as "
                           "inference.GRPCInferenceService"));
        break;
      }
      deps.erase(f->name());
      AddFile(f, &deps, &r);
      break;
    }
    case ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(ext.containing_type());
      const auto* field = type == nullptr ? nullptr
                                          : pool->FindExtensionByNumber(
                                                type, ext.extension_number());
      if (field == nullptr) {
        Error(&r, grpc::StatusCode::NOT_FOUND,
              absl::StrCat("no extension ", ext.extension_number(), " of '",
                           Quoted(ext.containing_type()), "'"));
        break;
      }
      deps.erase(field->file()->name());
      AddFile(field->file(), &deps, &r);
      break;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const auto* type =
          pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        Error(&r, grpc::StatusCode::NOT_FOUND,
              absl::StrCat("no message type '",
                           Quoted(request.all_extension_numbers_of_type()),
                           "'; use a fully qualified name"));
        break;
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* numbers = r.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const auto* e : extensions)
        numbers->add_extension_number(e->number());
      break;
    }
    case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      Error(&r, grpc::StatusCode::INVALID_ARGUMENT,
            "empty reflection request: set one of list_services, "
            "file_by_filename, file_containing_symbol, "
            "file_containing_extension, all_extension_numbers_of_type");
      break;
  }
  sent->insert(deps.begin(), deps.end());
  return r;
}

grpc::Status ReflectionV1Service::ServerReflectionInfo(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<ServerReflectionResponse, ServerReflectionRequest>*
        stream) {
  std::set<std::string> sent;
  ServerReflectionRequest request;
  while (stream->Read(&request)) {
    if (!stream->Write(Answer(request, &sent))) break;
  }
  return grpc::Status::OK;
}

}  // namespace npuk

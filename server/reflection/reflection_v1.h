// grpc.reflection.v1.ServerReflection (proto/reflection_v1.proto) over the
// generated descriptor pool: the stable reflection API that current grpcurl,
// Postman and grpc clients try first. Debian's grpc++ (1.51) reflection
// plugin serves only v1alpha; the daemon registers both.
//
// Usage (daemon):
//   grpc::reflection::InitProtoReflectionServerBuilderPlugin();  // v1alpha
//   ReflectionV1Service
//   v1({inference::GRPCInferenceService::service_full_name(),
//                           ...});
//   builder.RegisterService(&v1);
//
// Thread safety: immutable after construction; any number of streams.
#ifndef NPUK_SERVER_REFLECTION_REFLECTION_V1_H_
#define NPUK_SERVER_REFLECTION_REFLECTION_V1_H_

#include <set>
#include <string>
#include <vector>

#include "reflection_v1.grpc.pb.h"

namespace npuk {

class ReflectionV1Service final
    : public grpc::reflection::v1::ServerReflection::Service {
 public:
  // `services`: the fully qualified names ListServices reports, besides
  // the v1 and v1alpha reflection services themselves.
  explicit ReflectionV1Service(std::vector<std::string> services);

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1::ServerReflectionResponse,
                               grpc::reflection::v1::ServerReflectionRequest>*
          stream) override;

  // One request's answer. `sent` holds the files already sent on this
  // stream; files added to the answer are added to it.
  grpc::reflection::v1::ServerReflectionResponse Answer(
      const grpc::reflection::v1::ServerReflectionRequest& request,
      std::set<std::string>* sent) const;

 private:
  std::vector<std::string> services_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_REFLECTION_REFLECTION_V1_H_

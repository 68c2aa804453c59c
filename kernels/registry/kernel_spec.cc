#include "kernels/registry/kernel_spec.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace npuk {

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kInt8:
      return "INT8";
    case DType::kInt16:
      return "INT16";
    case DType::kInt32:
      return "INT32";
    case DType::kFp32:
      return "FP32";
  }
  return "INVALID";
}

size_t DTypeBytes(DType t) {
  switch (t) {
    case DType::kInt8:
      return 1;
    case DType::kInt16:
      return 2;
    case DType::kInt32:
    case DType::kFp32:
      return 4;
  }
  return 0;
}

size_t TensorDecl::item_elements() const {
  size_t n = 1;
  for (int64_t d : item_dims) n *= static_cast<size_t>(d);
  return n;
}

size_t KernelSpec::plane_bytes(size_t plane) const {
  return plane < inputs.size() ? inputs[plane].item_bytes() : param_bytes;
}

size_t KernelSpec::arg_bytes(size_t arg) const {
  size_t bytes = 0;
  for (size_t plane : device_args[arg]) bytes += plane_bytes(plane);
  return bytes;
}

size_t KernelSpec::plane_halo_bytes(size_t plane) const {
  return plane < inputs.size() ? inputs[plane].halo_bytes() : 0;
}

size_t KernelSpec::arg_halo_bytes(size_t arg) const {
  size_t bytes = 0;
  for (size_t plane : device_args[arg]) bytes += plane_halo_bytes(plane);
  return bytes;
}

size_t KernelSpec::pad_items() const {
  size_t pad = 0;
  for (size_t a = 0; a < device_args.size(); ++a) {
    const size_t item = arg_bytes(a);
    pad = std::max(pad, (arg_halo_bytes(a) + item - 1) / item);
  }
  return pad;
}

std::vector<size_t> KernelSpec::all_arg_bytes() const {
  std::vector<size_t> bytes;
  for (size_t a = 0; a < device_args.size(); ++a) bytes.push_back(arg_bytes(a));
  bytes.push_back(output_bytes());
  return bytes;
}

absl::Status ValidateKernelSpec(const KernelSpec& spec) {
  auto bad = [&](auto&&... what) {
    return absl::InternalError(
        absl::StrCat("kernel '", spec.name, "' is declared wrongly: ", what...,
                     "; fix kernels/", spec.name, "/kernel.cc"));
  };
  if (spec.name.empty() || spec.unit.empty() || spec.units.empty()) {
    return bad("name, unit and units must be set");
  }
  if (spec.inputs.empty()) return bad("it has no input tensor");
  for (const TensorDecl& t : spec.inputs) {
    if (t.item_bytes() == 0) return bad("input '", t.name, "' has no bytes");
  }
  if (spec.output.item_bytes() == 0) return bad("the output has no bytes");
  if (spec.output.halo != 0) return bad("the output cannot have a halo");
  for (size_t p = 0; p < spec.inputs.size(); ++p) {
    const TensorDecl& t = spec.inputs[p];
    if (t.halo == 0) continue;
    // A window is one shim DMA dimension: whole 32-bit words, at most 1023
    // of them (the BD's D0 wrap), at a word stride.
    const size_t window = t.item_bytes() + t.halo_bytes();
    if (t.item_bytes() % 4 != 0 || t.halo_bytes() % 4 != 0 ||
        window / 4 > 1023) {
      return bad("input '", t.name, "' has a halo of ", t.halo,
                 " elements: item and halo must be whole 32-bit words and "
                 "the window (item + halo) at most 1023 words");
    }
    bool alone = false;
    for (const auto& arg : spec.device_args) {
      if (arg.size() == 1 && arg[0] == p) alone = true;
    }
    if (!alone) {
      return bad("input '", t.name,
                 "' has a halo, so it must be a device argument on its own");
    }
  }
  if ((spec.param_bytes > 0) != (spec.encode_params != nullptr)) {
    return bad("param_bytes and encode_params go together");
  }
  if (spec.param_bytes == 0 && !spec.params.empty()) {
    return bad("parameters need a parameter record (param_bytes)");
  }
  std::vector<int> used(spec.plane_count(), 0);
  for (const auto& arg : spec.device_args) {
    if (arg.empty()) return bad("a device argument takes no plane");
    for (size_t p : arg) {
      if (p >= used.size()) return bad("device_args names plane ", p);
      ++used[p];
    }
  }
  for (size_t p = 0; p < used.size(); ++p) {
    if (used[p] != 1) return bad("plane ", p, " is used ", used[p], " times");
  }
  if (spec.reference == nullptr || spec.cpu == nullptr) {
    return bad("reference and cpu functions must be set");
  }
  if (spec.cpu_quantum == 0 || spec.default_max_batch == 0) {
    return bad("cpu_quantum and default_max_batch must be at least 1");
  }
  if (spec.design.streams.size() != spec.device_args.size() + 1) {
    return bad("the NPU design needs one shim stream per device argument (",
               spec.device_args.size() + 1, "), it has ",
               spec.design.streams.size());
  }
  for (const ShimStream& s : spec.design.streams) {
    const bool is_output = s.arg == spec.device_args.size();
    if (s.arg > spec.device_args.size() || is_output == s.to_device) {
      return bad("shim stream ", s.fifo,
                 " has the wrong argument or direction");
    }
  }
  const Golden& g = spec.golden;
  if (g.items == 0) return bad("it has no golden items");
  if (g.inputs.size() != spec.device_args.size()) {
    return bad("it needs one golden input file per device argument");
  }
  for (size_t a = 0; a < g.inputs.size(); ++a) {
    if (g.inputs[a].bytes.size() != spec.arg_span(a, g.items)) {
      return bad("golden ", g.inputs[a].file, " has ", g.inputs[a].bytes.size(),
                 " bytes, want ", spec.arg_span(a, g.items));
    }
  }
  if (g.output.bytes.size() != g.items * spec.output_bytes()) {
    return bad("golden ", g.output.file, " has ", g.output.bytes.size(),
               " bytes, want ", g.items * spec.output_bytes());
  }
  return absl::OkStatus();
}

std::vector<ParamValue> DefaultParams(const KernelSpec& spec) {
  std::vector<ParamValue> values;
  values.reserve(spec.params.size());
  for (const ParamDecl& p : spec.params) values.push_back(p.default_value);
  return values;
}

void GatherArg(const KernelSpec& spec, size_t arg,
               std::span<const std::span<const uint8_t>> planes, size_t first,
               size_t count, uint8_t* dest) {
  const std::vector<size_t>& sources = spec.device_args[arg];
  if (sources.size() == 1) {
    // One plane: the argument is the plane itself (with its halo).
    const size_t bytes = spec.plane_bytes(sources[0]);
    std::memcpy(dest, planes[sources[0]].data() + first * bytes,
                count * bytes + spec.plane_halo_bytes(sources[0]));
    return;
  }
  for (size_t i = first; i < first + count; ++i) {
    for (size_t p : sources) {
      const size_t bytes = spec.plane_bytes(p);
      std::memcpy(dest, planes[p].data() + i * bytes, bytes);
      dest += bytes;
    }
  }
}

void ScatterArg(const KernelSpec& spec, size_t arg, const uint8_t* src,
                size_t count, std::span<const std::span<uint8_t>> planes) {
  if (spec.device_args[arg].size() == 1) {
    const size_t p = spec.device_args[arg][0];
    std::memcpy(planes[p].data(), src, spec.plane_span(p, count));
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    for (size_t p : spec.device_args[arg]) {
      const size_t bytes = spec.plane_bytes(p);
      std::memcpy(planes[p].data() + i * bytes, src, bytes);
      src += bytes;
    }
  }
}

void ReferenceItem(const KernelSpec& spec,
                   std::span<const std::span<const uint8_t>> planes,
                   size_t item, uint8_t* out) {
  std::vector<std::vector<uint8_t>> args(spec.device_args.size());
  std::vector<const uint8_t*> in;
  for (size_t a = 0; a < args.size(); ++a) {
    args[a].resize(spec.arg_span(a, 1));
    GatherArg(spec, a, planes, item, 1, args[a].data());
    in.push_back(args[a].data());
  }
  spec.reference(in.data(), out, 1);
}

}  // namespace npuk

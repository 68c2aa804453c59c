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

size_t KernelSpec::stepped_plane() const {
  for (size_t p = 0; p < inputs.size(); ++p) {
    if (inputs[p].stepped) return p;
  }
  return SIZE_MAX;
}

size_t KernelSpec::stepped_arg() const {
  const size_t plane = stepped_plane();
  if (plane == SIZE_MAX) return SIZE_MAX;
  for (size_t a = 0; a < device_args.size(); ++a) {
    for (size_t p : device_args[a]) {
      if (p == plane) return a;
    }
  }
  return SIZE_MAX;
}

size_t KernelSpec::step_lanes() const {
  return is_stepped() ? std::max<size_t>(1, design.granule()) : 1;
}

size_t KernelSpec::plane_span(size_t plane, size_t items) const {
  if (plane < inputs.size() && inputs[plane].stepped) {
    const size_t lanes = step_lanes();
    return (items + lanes - 1) / lanes * lanes * max_steps * plane_bytes(plane);
  }
  return items * plane_bytes(plane) + plane_halo_bytes(plane);
}

size_t KernelSpec::arg_span(size_t arg, size_t items) const {
  if (arg == stepped_arg()) return plane_span(stepped_plane(), items);
  return items * arg_bytes(arg) + arg_halo_bytes(arg);
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
  size_t stepped = 0;
  for (const TensorDecl& t : spec.inputs) stepped += t.stepped ? 1 : 0;
  if (stepped > 1) return bad("at most one input may be stepped");
  if (stepped == 1) {
    const size_t arg = spec.stepped_arg();
    const TensorDecl& t = spec.inputs[spec.stepped_plane()];
    if (!spec.internal || spec.param_bytes == 0 || spec.steps_of == nullptr ||
        spec.max_steps == 0 || t.halo != 0 ||
        spec.device_args[arg].size() != 1) {
      return bad("the stepped input '", t.name,
                 "' needs an internal kernel with a parameter record, "
                 "steps_of and max_steps, no halo, and a device argument of "
                 "its own");
    }
    if (RecordArg(spec) >= arg || spec.design.columns != 1 ||
        spec.cpu_quantum % spec.step_lanes() != 0) {
      return bad("the stepped input '", t.name,
                 "' must come after the parameter record's device argument, "
                 "on a one-column design, with cpu_quantum a multiple of its ",
                 spec.step_lanes(), " lanes");
    }
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
    if (a == spec.stepped_arg()) {
      std::vector<const uint8_t*> args;
      for (const GoldenFile& f : g.inputs) args.push_back(f.bytes.data());
      const size_t want = StepSpanOfArgs(spec, args.data(), g.items);
      if (g.items % spec.step_lanes() != 0 ||
          g.inputs[a].bytes.size() != want) {
        return bad("golden ", g.inputs[a].file, " has ",
                   g.inputs[a].bytes.size(), " bytes for ", g.items,
                   " items, want ", want, " in whole rounds of ",
                   spec.step_lanes());
      }
      continue;
    }
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

size_t StepSpan(const KernelSpec& spec, const uint8_t* records, size_t stride,
                size_t item) {
  const size_t lanes = spec.step_lanes();
  const size_t round_bytes = lanes * spec.plane_bytes(spec.stepped_plane());
  size_t bytes = 0;
  for (size_t first = 0; first < item; first += lanes) {
    const size_t steps = spec.steps_of(records + first * stride);
    bytes += std::min(steps, spec.max_steps) * round_bytes;
  }
  return bytes;
}

size_t RecordArg(const KernelSpec& spec) {
  const size_t plane = spec.inputs.size();  // the parameter plane
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    for (size_t p : spec.device_args[a]) {
      if (p == plane) return a;
    }
  }
  return SIZE_MAX;
}

size_t RecordOffset(const KernelSpec& spec) {
  size_t offset = 0;
  for (size_t p : spec.device_args[RecordArg(spec)]) {
    if (p == spec.inputs.size()) break;
    offset += spec.plane_bytes(p);
  }
  return offset;
}

size_t StepSpanOfArgs(const KernelSpec& spec, const uint8_t* const* args,
                      size_t item) {
  const size_t arg = RecordArg(spec);
  return StepSpan(spec, args[arg] + RecordOffset(spec), spec.arg_bytes(arg),
                  item);
}

size_t StepSpanOfPlanes(const KernelSpec& spec,
                        std::span<const std::span<const uint8_t>> planes,
                        size_t item) {
  return StepSpan(spec, planes[spec.inputs.size()].data(), spec.param_bytes,
                  item);
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
  if (arg == spec.stepped_arg()) {
    const size_t from = StepSpanOfPlanes(spec, planes, first);
    const size_t to = StepSpanOfPlanes(spec, planes, first + count);
    std::memcpy(dest, planes[sources[0]].data() + from, to - from);
    return;
  }
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
  if (arg == spec.stepped_arg()) {
    // The records are in the planes already (the parameter plane's argument
    // comes first: ValidateKernelSpec).
    std::vector<std::span<const uint8_t>> view(planes.begin(), planes.end());
    std::memcpy(planes[spec.stepped_plane()].data(), src,
                StepSpanOfPlanes(spec, view, count));
    return;
  }
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
  // A stepped kernel's items are run a round at a time.
  size_t first = item;
  size_t count = 1;
  if (spec.is_stepped()) {
    const size_t lanes = spec.step_lanes();
    const size_t items = planes[spec.inputs.size()].size() / spec.param_bytes;
    first = item - item % lanes;
    count = std::min(lanes, items - first);
  }
  std::vector<std::vector<uint8_t>> args(spec.device_args.size());
  std::vector<const uint8_t*> in;
  for (size_t a = 0; a < args.size(); ++a) {
    args[a].resize(spec.arg_span(a, count));
    GatherArg(spec, a, planes, first, count, args[a].data());
    in.push_back(args[a].data());
  }
  std::vector<uint8_t> outs(count * spec.output_bytes());
  spec.reference(in.data(), outs.data(), count);
  std::memcpy(out, outs.data() + (item - first) * spec.output_bytes(),
              spec.output_bytes());
}

}  // namespace npuk

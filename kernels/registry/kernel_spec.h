// A kernel declared once, as data. Everything outside kernels/<name>/ --
// the server's rpc, batching, device backends, npu-sim, fault drills, health,
// telemetry and config, npukctl and the Python client -- learns what a kernel
// is from this declaration (or from ModelMetadata, which is built from it)
// and never names one. kernels/ADDING_A_KERNEL.md (docs/ADDING_A_KERNEL.md)
// walks through adding one.
//
// Vocabulary:
// - item: the unit a kernel consumes and produces (a mel "frame", an
//   attention "tile"). Requests carry N items along their leading dimension;
//   batches and statistics count items.
// - plane: the bytes of one source for every item of a request, item after
//   item. A request has one plane per input tensor, in declaration order,
//   then, when the kernel has parameters (param_bytes > 0), one parameter
//   plane holding the encoded parameter record once per item.
// - device argument: one buffer the device reads (inputs) or writes (the
//   output). Device input argument a holds, for each item, the
//   concatenation of that item's bytes of planes device_args[a]. On the xrt
//   backend argument a is data BO a (group 3+a), the output is the last BO.
#ifndef NPUK_KERNELS_REGISTRY_KERNEL_SPEC_H_
#define NPUK_KERNELS_REGISTRY_KERNEL_SPEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"

namespace npuk {

// The element types a tensor can have on the wire (KServe v2 names).
enum class DType { kInt8, kInt16, kInt32, kFp32 };

// "INT8", "INT16", "INT32", "FP32".
const char* DTypeName(DType t);
size_t DTypeBytes(DType t);

struct TensorDecl {
  std::string name;
  DType dtype;
  std::vector<int64_t> item_dims;  // the dims after the leading N
  // Windowed input (read-ahead): item i reads its own item_elements() and
  // the next `halo` elements of the plane, elements [i E, (i + 1) E + halo)
  // for E = item_elements(), so consecutive items' windows overlap by
  // `halo` (mel_pcm: 160-sample hop, 400-sample windows, halo 240). A plane
  // of n items is then n E + halo elements long. Only an input that is a
  // device argument on its own may have one; never the output.
  size_t halo = 0;
  // A stepped input (attention_stream's key/value tiles): item_dims are one
  // step of one item, and an item takes a variable number of steps, given by
  // its parameter record (KernelSpec::steps_of). Items go in rounds of
  // step_lanes() (the cores of the design's column, one item each); a
  // round's steps are its first item's, and the plane (and its device
  // argument) holds, round after round, steps x lanes step items in
  // step-major order: step 0 of lanes 0..L-1, then step 1, ... Lanes whose
  // item takes fewer steps, or has no item, hold zeros. The mem tile splits
  // that stream to the cores as it splits any input, so every core of a
  // round must loop over the round's steps. Only an input that is a device
  // argument on its own, of an internal kernel with a parameter record, may
  // be stepped; at most one.
  bool stepped = false;

  size_t item_elements() const;
  size_t item_bytes() const { return item_elements() * DTypeBytes(dtype); }
  size_t halo_bytes() const { return halo * DTypeBytes(dtype); }
};

// A request parameter the kernel understands (beyond Triton's reserved
// ones such as "timeout").
enum class ParamType { kDouble, kInt64, kBool };
using ParamValue = std::variant<double, int64_t, bool>;

struct ParamDecl {
  std::string name;
  ParamType type;
  ParamValue default_value;
  // One line for ModelConfig and --help: meaning, unit and valid range.
  std::string doc;
};

// One item-major kernel function: in[a] points at item 0 of device input
// argument a, out at item 0 of the output; runs items [0, n).
using BatchFn = void (*)(const uint8_t* const* in, uint8_t* out, size_t n);

// Validates the parameter values (one per KernelSpec::params, in that
// order, defaults already filled in) and writes the param_bytes record the
// device reads for every item. Errors are INVALID_ARGUMENT and name the
// parameter, its value and the valid range.
using EncodeParamsFn = absl::Status (*)(std::span<const ParamValue> values,
                                        std::span<uint8_t> record);

// The steps an item takes (TensorDecl::stepped) from its parameter record
// (param_bytes, any alignment), in [0, KernelSpec::max_steps].
using StepsFn = size_t (*)(const uint8_t* record);

// The shim side of the kernel's AIE design: one DMA stream per device
// argument. Which runtime-sequence argument travels on which channel and
// BD; the instruction stream for N items is built from this
// (kernels/tools/txn/designs.h) and kernels/tools/lint_sequences.py checks
// the MLIR design generator against it.
struct ShimStream {
  std::string fifo;  // objectfifo name in the design
  uint32_t arg;      // device argument; inputs first, the output last
  bool to_device;    // MM2S (host -> core) or S2MM (core -> host)
  uint32_t channel;
  uint32_t bd_id;
};

struct NpuDesign {
  std::string generator;  // design generator, relative to kernels/<name>/
  std::string source;     // AIE C++ source, relative to kernels/<name>/
  std::string entry;      // the extern "C" entry the core calls
  // In the order the runtime sequence issues them (outputs first, so the
  // S2MM side is armed before data flows).
  std::vector<ShimStream> streams;
  // The column design (kernels/tools/txn_design/aie_design.py, Design.cores
  // and .columns, which lint_sequences.py compares with these): `cores`
  // compute cores in each of `columns` columns, the mem tile of each column
  // splitting every round of cores items across them and joining their
  // outputs. Every run is a multiple of cores * columns items; npu-sim
  // prices compute over exactly these cores.
  uint32_t cores = 4;
  uint32_t columns = 1;
  uint32_t granule() const { return cores * columns; }
};

// Committed inputs and the exact outputs the reference gives for them, as
// binary files in kernels/<name>/golden/ embedded at build time, each with
// its SHA-256. The health canaries replay them through the serving path.
struct GoldenFile {
  std::string file;    // name inside kernels/<name>/golden/
  std::string sha256;  // lower-case hex of the file's SHA-256
  std::span<const uint8_t> bytes;
};

struct Golden {
  size_t items = 0;
  // One per device input argument (items * argument bytes each), in
  // device argument order.
  std::vector<GoldenFile> inputs;
  GoldenFile output;  // items * output bytes
  // The request parameter values (KernelSpec::params order) whose encoding
  // the parameter plane of `inputs` holds, so that a client can send the
  // golden over the wire (npukctl health --deep). Empty means the defaults;
  // always empty for an internal kernel, whose golden records may differ
  // per item (attention_stream's masks).
  std::vector<ParamValue> params;
};

struct KernelSpec {
  std::string name;     // the model name it is served as: "mel"
  std::string summary;  // one sentence for ModelMetadata and --help
  std::string unit;     // "frame"
  std::string units;    // "frames"

  std::vector<TensorDecl> inputs;  // plane order
  TensorDecl output;

  std::vector<ParamDecl> params;
  size_t param_bytes = 0;  // the encoded record, per item; 0 = none
  EncodeParamsFn encode_params = nullptr;  // REQUIRED when param_bytes > 0

  // Device input arguments; each lists the planes it concatenates per item
  // (plane inputs.size() is the parameter plane).
  std::vector<std::vector<size_t>> device_args;

  // The portable reference (the same entry points the AIE core links; npu-sim
  // runs it) and the CPU backend's batch path, byte-identical to it.
  BatchFn reference = nullptr;
  BatchFn cpu = nullptr;
  // The CPU backend splits a run across threads in multiples of this.
  size_t cpu_quantum = 1;

  // The largest run (and request) by default: --max-batch overrides it.
  uint32_t default_max_batch = 256;

  // Served only through a server-level model (server/models/, e.g. log_mel
  // over mel_pcm): it gets executors, a batcher, statistics and a health
  // canary like any kernel, but is not a model on the wire (absent from
  // RepositoryIndex, ModelMetadata and ModelInfer).
  bool internal = false;
  // Not enabled by default on the NPU backends (npu-sim, xrt): Phoenix
  // runs at most 6 hardware contexts, one per kernel, so not every kernel
  // fits beside the others. A config that lists the model enables it.
  bool npu_opt_in = false;

  // Stepped kernels only (TensorDecl::stepped): the steps of an item, and
  // the most any item takes (what buffers are sized for).
  StepsFn steps_of = nullptr;
  size_t max_steps = 0;

  NpuDesign design;
  Golden golden;

  // Derived sizes.
  size_t plane_count() const { return inputs.size() + (param_bytes ? 1 : 0); }
  // The stepped input's plane and device argument, or SIZE_MAX.
  size_t stepped_plane() const;
  size_t stepped_arg() const;
  bool is_stepped() const { return stepped_plane() != SIZE_MAX; }
  // Items per round of a stepped kernel (its design's granule); 1 otherwise.
  size_t step_lanes() const;
  // Per item of a plane or device argument; for the stepped one, per step
  // of one lane (TensorDecl::item_bytes()).
  size_t plane_bytes(size_t plane) const;  // per item
  size_t arg_bytes(size_t arg) const;      // per item, device input arg
  size_t output_bytes() const { return output.item_bytes(); }
  // Read-ahead bytes of a plane / a device input argument (TensorDecl::halo;
  // 0 for the parameter plane and for arguments without a windowed input).
  size_t plane_halo_bytes(size_t plane) const;
  size_t arg_halo_bytes(size_t arg) const;
  // Bytes of `items` items of a plane / device input argument, halo
  // included: what a request's plane holds and what a device buffer for
  // that many items needs. For the stepped one, the most `items` items can
  // take (whole rounds of max_steps): what buffers are sized for; the bytes
  // a request's items do take are StepSpan's.
  size_t plane_span(size_t plane, size_t items) const;
  size_t arg_span(size_t arg, size_t items) const;
  // Items a request's read-ahead occupies after its own items when requests
  // share a device run: ceil(halo / item bytes) over the arguments (0 when
  // no input is windowed). The batcher places each request's segment at an
  // item boundary, and the outputs of these items are discarded.
  size_t pad_items() const;
  // The bytes per item of every device argument, inputs then the output:
  // what a kernel package's manifest must say.
  std::vector<size_t> all_arg_bytes() const;
};

// Checks a declaration for consistency (device_args cover every plane once,
// golden sizes match, a parameter record has an encoder, the design has one
// stream per argument). The registry refuses to start with a bad one.
absl::Status ValidateKernelSpec(const KernelSpec& spec);

// The default parameter values, in declaration order.
std::vector<ParamValue> DefaultParams(const KernelSpec& spec);

// Gathers items [first, first + count) of `planes` (plane_count() spans of
// plane_span(p, items) bytes each) into device input argument `arg` at
// `dest` (arg_span(arg, count) bytes: a windowed argument's halo too). The
// stepped argument: the planes' step bytes of those items (StepSpan; first
// and, unless it is the end, first + count whole rounds).
void GatherArg(const KernelSpec& spec, size_t arg,
               std::span<const std::span<const uint8_t>> planes, size_t first,
               size_t count, uint8_t* dest);

// The inverse: splits `count` items of device input argument bytes
// (arg_span(arg, count)) into the planes of that argument (used to turn
// golden device bytes into a request).
void ScatterArg(const KernelSpec& spec, size_t arg, const uint8_t* src,
                size_t count, std::span<const std::span<uint8_t>> planes);

// Stepped kernels: the bytes of the stepped plane (and device argument)
// before item `item` (rounded up to a whole round), from the items'
// parameter records: `records` is the parameter plane (param_bytes per
// item) when `stride` is param_bytes, or the device argument that holds it
// (stride arg_bytes, the record at its offset in the argument:
// RecordOffset). REQUIRES: spec.is_stepped(); the records of the first
// items of the rounds before `item` present.
size_t StepSpan(const KernelSpec& spec, const uint8_t* records, size_t stride,
                size_t item);
// The device input argument that holds the parameter plane and the
// record's offset in each of its items.
size_t RecordArg(const KernelSpec& spec);
size_t RecordOffset(const KernelSpec& spec);
// StepSpan over device arguments (`args`: every device input argument).
size_t StepSpanOfArgs(const KernelSpec& spec, const uint8_t* const* args,
                      size_t item);
// StepSpan over planes (`planes`: every plane).
size_t StepSpanOfPlanes(const KernelSpec& spec,
                        std::span<const std::span<const uint8_t>> planes,
                        size_t item);

// Runs spec.reference on one item given as planes; for the zero guard and
// tests. `out` has output_bytes(). A stepped kernel's item is run with the
// rest of its round, which `planes` must hold (items of the round past the
// planes' end are absent).
void ReferenceItem(const KernelSpec& spec,
                   std::span<const std::span<const uint8_t>> planes,
                   size_t item, uint8_t* out);

}  // namespace npuk

#endif  // NPUK_KERNELS_REGISTRY_KERNEL_SPEC_H_

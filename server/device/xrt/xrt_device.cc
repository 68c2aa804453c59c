#include "server/device/xrt/xrt_device.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "experimental/xrt_kernel.h"
#include "experimental/xrt_xclbin.h"
#include "kernels/tools/txn/designs.h"
#include "kernels/tools/txn_package/kernel_package.h"
#include "server/common/status_macros.h"
#include "server/device/xrt/run_plan.h"
#include "spdlog/spdlog.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_hw_context.h"
#include "xrt/xrt_kernel.h"

namespace npuk::xrt_backend {
inline namespace NPUK_XRT_FLAVOR {
namespace {

// mlir-aie's xclbins: kernel(opcode, instr, ninstr, bo0, bo1, ...).
constexpr unsigned int kOpcodeDpuSequence = 3;
constexpr int kInstrArg = 1;
constexpr int kFirstDataArg = 3;
// Runs at least this slow are logged with their likely cause.
constexpr absl::Duration kSlowRun = absl::Milliseconds(100);

std::string StateName(ert_cmd_state s) {
  switch (s) {
    case ERT_CMD_STATE_COMPLETED:
      return "ERT_CMD_STATE_COMPLETED";
    case ERT_CMD_STATE_ERROR:
      return "ERT_CMD_STATE_ERROR";
    case ERT_CMD_STATE_ABORT:
      return "ERT_CMD_STATE_ABORT";
    case ERT_CMD_STATE_TIMEOUT:
      return "ERT_CMD_STATE_TIMEOUT";
    case ERT_CMD_STATE_NORESPONSE:
      return "ERT_CMD_STATE_NORESPONSE";
    default:
      return absl::StrCat("ert_cmd_state ", static_cast<int>(s));
  }
}

// Whether a command in state `s` has ended (the driver will not touch its
// buffers again). NEW, QUEUED, RUNNING and SUBMITTED are in flight.
bool Ended(ert_cmd_state s) {
  switch (s) {
    case ERT_CMD_STATE_COMPLETED:
    case ERT_CMD_STATE_ERROR:
    case ERT_CMD_STATE_ABORT:
    case ERT_CMD_STATE_TIMEOUT:
    case ERT_CMD_STATE_NORESPONSE:
    case ERT_CMD_STATE_SKERROR:
    case ERT_CMD_STATE_SKCRASHED:
      return true;
    default:
      return false;
  }
}

std::chrono::milliseconds Ms(absl::Duration d) {
  return std::chrono::milliseconds(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// The loaded package and the XRT objects that run it. Executors share one
// per kernel; a rebuild swaps context and kernel, BOs (device-level) stay.
struct Loaded {
  kernelpkg::LoadedPackage pkg;
  xrt::xclbin xclbin;
  xrt::uuid uuid;
};

class XrtDevice;

class XrtExecutor final : public Executor {
 public:
  XrtExecutor(XrtDevice* device, const KernelSpec& kernel, size_t max_items,
              std::shared_ptr<const Loaded> loaded)
      : device_(device),
        spec_(kernel),
        max_items_(max_items),
        loaded_(std::move(loaded)) {}

  absl::Status Init();

  const KernelSpec& kernel() const override { return spec_; }
  size_t max_items() const override { return max_items_; }
  // Device input argument `arg` is data BO `arg` (kernel argument 3+arg),
  // mapped: the batcher writes straight into device-visible memory, and the
  // parameter plane travels like any tensor.
  absl::Span<uint8_t> input(size_t arg) override {
    return {data_.at(arg).map<uint8_t*>(), spec_.arg_span(arg, max_items_)};
  }
  absl::Span<const uint8_t> output() const override {
    return {output_, max_items_ * spec_.output_bytes()};
  }
  absl::Status Run(size_t n) override;

 private:
  struct Chunk {
    size_t start;  // first item
    size_t items;  // real items in this run
    uint32_t n;    // sequence size (>= items; the rest is padding)
  };
  std::vector<Chunk> Plan(size_t n) const;
  // The package's sequence sizes, ascending (its sequences' keys).
  std::vector<uint32_t> sizes_;
  // Takes the kernel's shared hardware context (replacing it first if
  // `rebuild_from` is the generation that failed) and makes our kernel.
  absl::Status CreateContext(std::optional<uint64_t> rebuild_from);
  // One device run of `chunk` (sequence mode) or of `chunk.items` single
  // item runs (runlist mode).
  absl::Status RunChunk(const Chunk& chunk);
  absl::Status RunSequence(const Chunk& chunk);
  // A stepped kernel: zeroes the padding items' records and writes the
  // run's sequence (its step bytes) into the instruction buffer of N.
  absl::Status PrepareSteps(const Chunk& chunk);
  absl::Status RunList(const Chunk& chunk);
  // Counts a failure and, on the second in a row or when `rebuild` (the
  // driver refused a submission: the context is gone), rebuilds the
  // context unless a command is still in flight on it.
  absl::Status Fail(const std::string& what, bool rebuild = false);
  // A run that missed run_timeout: never aborted, never destroyed in
  // flight. Waits up to tdr_wait for the driver's TDR to end it; if it
  // does not, the run is kept in pending_run_. Returns the failure.
  absl::Status TimedOut(xrt::run run, const Chunk& chunk);
  absl::Status ListTimedOut(xrt::runlist list, const Chunk& chunk);
  // UNAVAILABLE while a command of an earlier Run() is still in flight (its
  // buffers are the ones this run would use); drops it once it ended.
  absl::Status CheckPending();
  bool Pending() const {
    return bool(pending_run_) || pending_list_.has_value();
  }
  // The data BO of argument `arg` covering items [start, start+n).
  xrt::bo& Slice(size_t arg, size_t start, size_t n);
  // Byte offset and length of items [start, start + n) in data BO `arg`
  // (a stepped argument: the steps their records give, read from the
  // mapped record argument).
  size_t ArgOffset(size_t arg, size_t start) const;
  size_t ArgLength(size_t arg, size_t start, size_t n) const;
  // Whether runs go as runlists of one-round runs (xrt.use_runlist); a
  // stepped kernel's runs are always sequences built for their steps.
  bool runlist() const { return options_->use_runlist && !spec_.is_stepped(); }
  size_t ItemBytes(size_t arg) const {
    return loaded_->pkg.manifest.arg_bytes_per_item(static_cast<int>(arg));
  }
  // What a windowed input's last item reads past its items (its shim BD
  // reads strided windows, TensorDecl::halo); 0 for the output.
  size_t HaloBytes(size_t arg) const {
    return arg < spec_.device_args.size() ? spec_.arg_halo_bytes(arg) : 0;
  }
  void SyncRange(size_t arg, xclBOSyncDirection dir, size_t start, size_t n);

  XrtDevice* const device_;
  const KernelSpec& spec_;
  const txn::Design design_ = txn::DesignFor(spec_);
  const size_t max_items_;
  const std::shared_ptr<const Loaded> loaded_;
  const Options* options_ = nullptr;

  size_t capacity_items_ = 0;
  xrt::hw_context ctx_;
  uint64_t generation_ = 0;  // of ctx_
  xrt::kernel kernel_;
  std::map<uint32_t, xrt::bo> instr_;  // per sequence N
  std::map<uint32_t, uint32_t> instr_words_;
  // Per data argument, in argument order: the device input arguments, then
  // the output.
  std::vector<xrt::bo> data_;
  // Keyed by (argument, first item, items).
  std::map<std::tuple<size_t, size_t, size_t>, xrt::bo> slices_;
  // The stepped argument's slice of the current chunk (Slice).
  xrt::bo stepped_slice_;
  // data_[a].map(), for reading a stepped kernel's records.
  std::vector<const uint8_t*> maps_;
  std::vector<xrt::run> item_runs_;  // runlist mode: one per round
  const uint8_t* output_ = nullptr;  // mapped data_.back()
  int consecutive_failures_ = 0;
  // A command that outlived run_timeout + tdr_wait, kept alive until the
  // driver ends it (destroying it in flight would std::abort() in XRT).
  xrt::run pending_run_;
  std::optional<xrt::runlist> pending_list_;
  absl::Time pending_since_;
  absl::Time last_run_end_ = absl::Now();
  absl::Time last_slow_log_ = absl::InfinitePast();
};

class XrtDevice final : public Device {
 public:
#if NPUK_XRT_NPUSIM
  XrtDevice(Options options, xrt::device device, Misuse misuse)
      : options_(std::move(options)),
        device_(std::move(device)),
        misuse_(misuse) {}
#else
  explicit XrtDevice(Options options) : options_(std::move(options)) {}

  absl::Status Open() {
    try {
      device_ = xrt::device(options_.device_index);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat(
          options_.backend_name, ": cannot open NPU device ",
          options_.device_index, ": ", e.what(),
          "; check that the amdxdna driver is loaded and `xrt-smi examine` "
          "lists the NPU"));
    }
    return absl::OkStatus();
  }
#endif

  std::string_view name() const override { return options_.backend_name; }

  absl::StatusOr<std::unique_ptr<Executor>> CreateExecutor(
      const KernelSpec& kernel, size_t max_items) override {
    if (max_items == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(options_.backend_name, ": an executor for ", kernel.name,
                       " needs max_items >= 1"));
    }
    NPUK_ASSIGN_OR_RETURN(std::shared_ptr<const Loaded> loaded, Load(kernel));
    auto executor = std::make_unique<XrtExecutor>(this, kernel, max_items,
                                                  std::move(loaded));
    NPUK_RETURN_IF_ERROR(executor->Init());
    return executor;
  }

  const Options& options() const { return options_; }
  const xrt::device& device() const { return device_; }
#if NPUK_XRT_NPUSIM
  Misuse misuse() const { return misuse_; }
#endif

  // One hardware context per kernel, shared by its executors: Phoenix has
  // six for the whole machine. Each executor makes its own xrt::kernel on
  // it, so no XRT object is used by two threads.
  struct SharedContext {
    xrt::hw_context ctx;
    uint64_t generation = 0;  // bumped by every rebuild
  };
  // The current context, created on first use. With `rebuild_from`, an
  // executor saw that generation fail twice: unless another executor
  // already replaced it, it is dropped and created again.
  absl::StatusOr<SharedContext> Context(const KernelSpec& kernel,
                                        const Loaded& loaded,
                                        std::optional<uint64_t> rebuild_from)
      ABSL_LOCKS_EXCLUDED(ctx_mu_);
  uint64_t ContextGeneration(const KernelSpec& kernel)
      ABSL_LOCKS_EXCLUDED(ctx_mu_) {
    absl::MutexLock lock(&ctx_mu_);
    return contexts_[&kernel].generation;
  }

 private:
  absl::StatusOr<std::shared_ptr<const Loaded>> Load(const KernelSpec& kernel)
      ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  xrt::device device_;
#if NPUK_XRT_NPUSIM
  const Misuse misuse_;
#endif
  absl::Mutex mu_;
  // Keyed by declaration, which outlives the device (the registry's live
  // for the process).
  std::map<const KernelSpec*, std::shared_ptr<const Loaded>> loaded_
      ABSL_GUARDED_BY(mu_);
  absl::Mutex ctx_mu_;
  std::map<const KernelSpec*, SharedContext> contexts_ ABSL_GUARDED_BY(ctx_mu_);
};

absl::StatusOr<XrtDevice::SharedContext> XrtDevice::Context(
    const KernelSpec& kernel, const Loaded& loaded,
    std::optional<uint64_t> rebuild_from) {
  absl::MutexLock lock(&ctx_mu_);
  SharedContext& shared = contexts_[&kernel];
  if (shared.ctx && rebuild_from == shared.generation) {
    shared.ctx = xrt::hw_context();  // free it before asking for another
  }
  if (!shared.ctx) {
    try {
      shared.ctx = xrt::hw_context(device_, loaded.uuid);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat(
          options_.backend_name, ": cannot create a hardware context for ",
          kernel.name, ": ", e.what(),
          " (Phoenix has 6 contexts shared by all processes; stop other NPU "
          "workloads)"));
    }
    ++shared.generation;
  }
  return shared;
}

absl::StatusOr<std::shared_ptr<const Loaded>> XrtDevice::Load(
    const KernelSpec& kernel) {
  absl::MutexLock lock(&mu_);
  if (auto it = loaded_.find(&kernel); it != loaded_.end()) return it->second;
  const std::string& name = kernel.name;
  auto loaded = std::make_shared<Loaded>();
  absl::StatusOr<kernelpkg::LoadedPackage> pkg =
      kernelpkg::LoadPackage(options_.kernel_dir, name, options_.target);
  if (!pkg.ok()) {
    return absl::Status(
        pkg.status().code(),
        absl::StrCat(options_.backend_name, ": ", pkg.status().message()));
  }
  loaded->pkg = *std::move(pkg);
  // The package must move exactly the bytes the declaration gives each
  // device argument, or the batcher's staging and the DMA disagree.
  const std::vector<size_t> want = kernel.all_arg_bytes();
  const auto& have = loaded->pkg.manifest.arg_bytes_per_item();
  if (!std::equal(want.begin(), want.end(), have.begin(), have.end())) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.backend_name, ": the ", name, " package in ",
        loaded->pkg.dir.string(), " moves [", absl::StrJoin(have, ", "),
        "] bytes per item per argument but the ", name, " declaration says [",
        absl::StrJoin(want, ", "),
        "] (inputs, then the output); rebuild the package from this "
        "source tree"));
  }
  const std::string xclbin_path = loaded->pkg.xclbin_path.string();
  try {
    loaded->xclbin = xrt::xclbin(xclbin_path);
    const std::string xclbin_kernel = loaded->pkg.manifest.xclbin_kernel();
    bool found = false;
    for (const auto& k : loaded->xclbin.get_kernels()) {
      found = found || k.get_name().rfind(xclbin_kernel, 0) == 0;
    }
    if (!found) {
      return absl::FailedPreconditionError(absl::StrCat(
          options_.backend_name, ": ", xclbin_path, " has no kernel \"",
          xclbin_kernel,
          "\" named by its manifest; the xclbin and manifest do not belong "
          "together, rebuild the package"));
    }
    loaded->uuid = device_.register_xclbin(loaded->xclbin);
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.backend_name, ": cannot load ", xclbin_path, ": ", e.what()));
  }
  spdlog::info("{}: loaded {} package {} ({} sequences, largest N={})",
               options_.backend_name, name, loaded->pkg.dir.string(),
               loaded->pkg.sequences.size(),
               loaded->pkg.sequences.rbegin()->first);
  loaded_[&kernel] = loaded;
  return std::shared_ptr<const Loaded>(loaded);
}

std::vector<XrtExecutor::Chunk> XrtExecutor::Plan(size_t n) const {
  std::vector<Chunk> chunks;
  if (runlist()) {
    // One run per round of the design (its smallest sequence: one item per
    // core), up to the largest sequence's worth of runs per list.
    const uint32_t round = sizes_.front();
    const uint32_t largest = sizes_.back();
    for (size_t start = 0; start < n;) {
      const size_t items = std::min<size_t>(n - start, largest);
      chunks.push_back({start, items, round});
      start += items;
    }
    return chunks;
  }
  // Sequence sizes chosen so that padding stays within 1/8 of the items
  // run beyond whole rounds of the design (run_plan.h).
  for (const PlannedRun& run : PlanRuns(sizes_, n)) {
    chunks.push_back({run.start, run.items, run.n});
  }
  return chunks;
}

absl::Status XrtExecutor::CreateContext(std::optional<uint64_t> rebuild_from) {
  NPUK_ASSIGN_OR_RETURN(const XrtDevice::SharedContext shared,
                        device_->Context(spec_, *loaded_, rebuild_from));
  try {
    kernel_ = xrt::kernel(shared.ctx, loaded_->pkg.manifest.xclbin_kernel());
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_->backend_name, ": ",
                     loaded_->pkg.xclbin_path.string(), " has no kernel \"",
                     loaded_->pkg.manifest.xclbin_kernel(), "\": ", e.what()));
  }
  ctx_ = shared.ctx;
  generation_ = shared.generation;
  item_runs_.clear();  // they belong to the previous kernel object
  return absl::OkStatus();
}

absl::Status XrtExecutor::Init() {
  options_ = &device_->options();
  const auto& seqs = loaded_->pkg.sequences;
  for (const auto& [n, words] : seqs) sizes_.push_back(n);
  if (sizes_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_->backend_name, ": the ", spec_.name,
                     " package has no sequences; rebuild it"));
  }
  // The package's sequences must be whole rounds of the declared design
  // (one item per core of every column): the mem tiles hand out and join
  // items a round at a time, so another size would never complete.
  const uint32_t round = std::max<uint32_t>(1, spec_.design.granule());
  for (uint32_t n : sizes_) {
    if (n % round != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_->backend_name, ": the ", spec_.name,
                       " package in ", loaded_->pkg.dir.string(),
                       " has a sequence for N=", n, ", not a multiple of the ",
                       round, " items of a round of its design (",
                       spec_.design.cores, " cores x ", spec_.design.columns,
                       " columns); rebuild the package from this source tree"));
    }
  }
  if (options_->use_runlist && spec_.is_stepped()) {
    spdlog::info(
        "{}: {} runs as sequences built for each run's steps; "
        "xrt.use_runlist does not apply to it",
        options_->backend_name, spec_.name);
  }
  if (runlist() && sizes_.front() != round) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_->backend_name,
        ": xrt.use_runlist runs one round at a time "
        "and needs the one-round sequence (N=",
        round,
        ": one item per core) in "
        "the ",
        spec_.name, " package; its smallest is N=", sizes_.front()));
  }
  // Buffers for the plan of max_items_, padding included: every smaller
  // batch's runs fall inside them (run_plan.h), so they are allocated once.
  if (runlist()) {
    capacity_items_ = (max_items_ + round - 1) / round * round;
  } else {
    capacity_items_ = PlanCapacity(sizes_, max_items_);
  }
  NPUK_RETURN_IF_ERROR(CreateContext(std::nullopt));

  // Load() checked that the manifest has one entry per device argument.
  const size_t args = loaded_->pkg.manifest.arg_bytes_per_item_size();
  xrt::bo::flags data_flags = xrt::bo::flags::host_only;
  bool group_zero = false;
#if NPUK_XRT_NPUSIM
  data_flags = device_->misuse() == Misuse::kDataBoNormalFlags
                   ? xrt::bo::flags::normal
                   : data_flags;
  group_zero = device_->misuse() == Misuse::kDataBoGroupZero;
#endif
  try {
    for (size_t arg = 0; arg < args; ++arg) {
      const int argno = kFirstDataArg + static_cast<int>(arg);
      const int group = kernel_.group_id(argno);
      if (group < 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            options_->backend_name, ": argument ", argno, " of ",
            loaded_->pkg.xclbin_path.string(),
            " is not a buffer; the xclbin does not match its manifest"));
      }
      data_.emplace_back(
          device_->device(),
          arg < spec_.device_args.size() ? spec_.arg_span(arg, capacity_items_)
                                         : capacity_items_ * ItemBytes(arg),
          data_flags, group_zero ? 0u : static_cast<uint32_t>(group));
      std::memset(data_.back().map(), 0, data_.back().size());
    }
    output_ = data_.back().map<const uint8_t*>();
    for (xrt::bo& bo : data_) maps_.push_back(bo.map<const uint8_t*>());
    for (const auto& [n, words] : seqs) {
      xrt::bo bo(device_->device(), words.size() * sizeof(uint32_t),
                 xrt::bo::flags::cacheable,
                 static_cast<uint32_t>(kernel_.group_id(kInstrArg)));
      std::memcpy(bo.map(), words.data(), words.size() * sizeof(uint32_t));
      bo.sync(XCL_BO_SYNC_BO_TO_DEVICE);
      instr_.emplace(n, std::move(bo));
      instr_words_[n] = static_cast<uint32_t>(words.size());
    }
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat(
        options_->backend_name, ": cannot allocate buffers for ", spec_.name,
        " (", max_items_, " items): ", e.what(),
        "; if this says \"failed to allocate BO\" or \"Lock limit "
        "exceeded\", raise RLIMIT_MEMLOCK (LimitMEMLOCK=infinity)"));
  }
  return absl::OkStatus();
}

xrt::bo& XrtExecutor::Slice(size_t arg, size_t start, size_t n) {
  const size_t offset = ArgOffset(arg, start);
  // A run reads from its argument's start: the whole buffer will do.
  if (offset == 0) return data_[arg];
  if (arg == spec_.stepped_arg()) {
    // Its offsets follow the records, so they are not cached (the run
    // holds its own handle; the next chunk replaces this one). A chunk
    // whose records take no steps moves nothing on it (BuildSequence).
    const size_t length = ArgLength(arg, start, n);
    if (length == 0) return data_[arg];
    stepped_slice_ = xrt::bo(data_[arg], length, offset);
    return stepped_slice_;
  }
  auto key = std::make_tuple(arg, start, n);
  auto it = slices_.find(key);
  if (it == slices_.end()) {
    it =
        slices_
            .emplace(key, xrt::bo(data_[arg], ArgLength(arg, start, n), offset))
            .first;
  }
  return it->second;
}

void XrtExecutor::SyncRange(size_t arg, xclBOSyncDirection dir, size_t start,
                            size_t n) {
  const size_t length = ArgLength(arg, start, n);
  if (length > 0) data_[arg].sync(dir, length, ArgOffset(arg, start));
}

size_t XrtExecutor::ArgOffset(size_t arg, size_t start) const {
  if (arg != spec_.stepped_arg()) return start * ItemBytes(arg);
  std::vector<const uint8_t*> args;
  for (size_t a = 0; a < spec_.device_args.size(); ++a) {
    args.push_back(maps_[a]);
  }
  return StepSpanOfArgs(spec_, args.data(), start);
}

size_t XrtExecutor::ArgLength(size_t arg, size_t start, size_t n) const {
  if (arg != spec_.stepped_arg()) return n * ItemBytes(arg) + HaloBytes(arg);
  return ArgOffset(arg, start + n) - ArgOffset(arg, start);
}

absl::Status XrtExecutor::Run(size_t n) {
  if (n == 0 || n > max_items_) {
    return absl::InternalError(absl::StrCat(options_->backend_name, ": ",
                                            spec_.name, " Run(", n,
                                            ") outside [1, ", max_items_, "]"));
  }
  if (n % spec_.step_lanes() != 0) {
    // A round's records must agree on its steps, so a partial one cannot
    // be padded here (the batcher's tasks are whole rounds).
    return absl::InternalError(
        absl::StrCat(options_->backend_name, ": ", spec_.name, " Run(", n,
                     ") is not whole rounds of ", spec_.step_lanes()));
  }
  NPUK_RETURN_IF_ERROR(CheckPending());
  if (device_->ContextGeneration(spec_) != generation_) {
    // Another executor rebuilt the shared context; follow it.
    NPUK_RETURN_IF_ERROR(CreateContext(std::nullopt));
  }
  const absl::Time start = absl::Now();
  const absl::Duration idle = start - last_run_end_;
  for (const Chunk& chunk : Plan(n)) {
    absl::Status status = RunChunk(chunk);
    last_run_end_ = absl::Now();
    NPUK_RETURN_IF_ERROR(status);
  }
  const absl::Duration took = last_run_end_ - start;
  if ((idle >= options_->autosuspend || took >= kSlowRun) &&
      last_run_end_ - last_slow_log_ >= absl::Seconds(1)) {
    // Not an error: the likely cause is a cold start, amdxdna resuming an
    // NPU it suspended after autosuspend idle (~135 ms on Phoenix; other
    // processes may have kept it awake). Logged so that latency outliers
    // have a name; at most once a second per executor.
    last_slow_log_ = last_run_end_;
    spdlog::info(
        "{}: {} run of {} items took {} after {} idle ({}; the NPU "
        "autosuspends after {} idle and a cold first run takes ~135 ms)",
        options_->backend_name, spec_.name, n, absl::FormatDuration(took),
        absl::FormatDuration(idle),
        idle >= options_->autosuspend ? "likely a cold start"
                                      : "slow run: a cold start or a busy NPU",
        absl::FormatDuration(options_->autosuspend));
  }
  consecutive_failures_ = 0;
  return absl::OkStatus();
}

absl::Status XrtExecutor::RunChunk(const Chunk& chunk) {
  // Inputs are arguments 0..k-1, the output is the last one.
  const size_t out_arg = data_.size() - 1;
  const size_t span = runlist() ? chunk.items : chunk.n;
  bool sync_inputs = true;
  bool sync_output = true;
#if NPUK_XRT_NPUSIM
  sync_inputs = device_->misuse() != Misuse::kSkipInputSync;
  sync_output = device_->misuse() != Misuse::kSkipOutputSync;
#endif
  try {
    if (spec_.is_stepped()) NPUK_RETURN_IF_ERROR(PrepareSteps(chunk));
    if (sync_inputs) {
      for (size_t arg = 0; arg < out_arg; ++arg) {
        SyncRange(arg, XCL_BO_SYNC_BO_TO_DEVICE, chunk.start, span);
      }
    }
    NPUK_RETURN_IF_ERROR(runlist() ? RunList(chunk) : RunSequence(chunk));
    if (sync_output) {
      SyncRange(out_arg, XCL_BO_SYNC_BO_FROM_DEVICE, chunk.start, span);
    }
  } catch (const std::exception& e) {
    return Fail(absl::StrCat("XRT error: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status XrtExecutor::PrepareSteps(const Chunk& chunk) {
  // The padding items of the run take no steps: their records are zeroed
  // (a zero record takes none), so the stream holds the real items' steps.
  const size_t rec_arg = RecordArg(spec_);
  uint8_t* records = data_[rec_arg].map<uint8_t*>();
  std::memset(records + (chunk.start + chunk.items) * ItemBytes(rec_arg), 0,
              (chunk.n - chunk.items) * ItemBytes(rec_arg));
  const size_t arg = spec_.stepped_arg();
  const size_t bytes = ArgLength(arg, chunk.start, chunk.n);
  NPUK_ASSIGN_OR_RETURN(
      const std::vector<uint32_t> words,
      txn::BuildSequence(design_, chunk.n, static_cast<uint32_t>(arg), bytes));
  // The same number of words as the package's sequence for N (only the
  // byte counts differ), so the run reuses its instruction buffer.
  xrt::bo& instr = instr_.at(chunk.n);
  if (words.size() != instr_words_.at(chunk.n)) {
    return absl::InternalError(absl::StrCat(
        options_->backend_name, ": the ", spec_.name,
        " sequence for N=", chunk.n, " and ", bytes, " step bytes has ",
        words.size(), " words, the package's ", instr_words_.at(chunk.n),
        "; rebuild the package from this source tree"));
  }
  std::memcpy(instr.map(), words.data(), words.size() * sizeof(uint32_t));
  instr.sync(XCL_BO_SYNC_BO_TO_DEVICE);
  return absl::OkStatus();
}

absl::Status XrtExecutor::RunSequence(const Chunk& chunk) {
  xrt::bo* instr = &instr_.at(chunk.n);
  uint32_t ninstr = instr_words_.at(chunk.n);
#if NPUK_XRT_NPUSIM
  xrt::bo no_instr;
  if (device_->misuse() == Misuse::kInstrCountInBytes) ninstr *= 4;
  if (device_->misuse() == Misuse::kNoInstructionBo) {
    instr = &no_instr;
    ninstr = 0;
  }
#endif
  // kernel(3, instr, ninstr, bo0, bo1, ...) with one BO per device
  // argument, however many the kernel declares.
  xrt::run run(kernel_);
  run.set_arg(0, kOpcodeDpuSequence);
  run.set_arg(kInstrArg, *instr);
  run.set_arg(2, ninstr);
  for (size_t arg = 0; arg < data_.size(); ++arg) {
    run.set_arg(kFirstDataArg + static_cast<int>(arg),
                Slice(arg, chunk.start, chunk.n));
  }
  try {
    run.start();
  } catch (const std::exception& e) {
    // The submission itself was refused: nothing is in flight, and the
    // driver has no usable context for us.
    return Fail(absl::StrCat("run of N=", chunk.n,
                             " could not be submitted: ", e.what()),
                /*rebuild=*/true);
  }
  ert_cmd_state state = ERT_CMD_STATE_NEW;
  try {
    state = run.wait(Ms(options_->run_timeout));
    // wait() says TIMEOUT both when it gave up and when the TDR ended the
    // command; only the command's state tells whether it is still in
    // flight.
    if (state == ERT_CMD_STATE_TIMEOUT && !Ended(run.state())) {
      return TimedOut(std::move(run), chunk);
    }
  } catch (const std::exception& e) {
    if (!Ended(run.state())) return TimedOut(std::move(run), chunk);
    return Fail(absl::StrCat("run of N=", chunk.n, ": ", e.what()));
  }
  if (state == ERT_CMD_STATE_TIMEOUT || state == ERT_CMD_STATE_ABORT) {
    // Ended by the driver's TDR: TIMEOUT for the hung command, ABORT for
    // one queued behind it on the shared context. The driver restarted the
    // context in place.
    return Fail(absl::StrCat(
        "run of N=", chunk.n, " ended in ", StateName(state),
        state == ERT_CMD_STATE_TIMEOUT
            ? " (the driver's TDR ended the hung command)"
            : " (the driver's TDR aborted it behind a hung command)"));
  }
  if (state != ERT_CMD_STATE_COMPLETED) {
    return Fail(
        absl::StrCat("run of N=", chunk.n, " ended in ", StateName(state)));
  }
  return absl::OkStatus();
}

absl::Status XrtExecutor::TimedOut(xrt::run run, const Chunk& chunk) {
  // No run.abort(): XRT would submit ERT_ABORT, which amdxdna refuses
  // (-EOPNOTSUPP), and the command would still be in flight.
  spdlog::warn(
      "{}: {} run of N={} still in flight after {}; waiting up to {} for "
      "the driver's TDR to end it",
      options_->backend_name, spec_.name, chunk.n,
      absl::FormatDuration(options_->run_timeout),
      absl::FormatDuration(options_->tdr_wait));
  const absl::Time deadline = absl::Now() + options_->tdr_wait;
  ert_cmd_state state = run.state();
  while (!Ended(state) && absl::Now() < deadline) {
    try {
      run.wait(Ms(std::min(deadline - absl::Now(), absl::Milliseconds(100))));
    } catch (const std::exception&) {
      // The state read below decides.
    }
    state = run.state();
  }
  if (!Ended(state)) {
    pending_run_ = std::move(run);
    pending_since_ = absl::Now();
    return Fail(absl::StrCat(
        "run of N=", chunk.n,
        " timed out (ERT_CMD_STATE_TIMEOUT) and is still "
        "in flight after the driver's TDR should have ended it; its buffers "
        "stay the device's, so this executor refuses runs until it ends"));
  }
  if (state == ERT_CMD_STATE_COMPLETED) {
    spdlog::warn("{}: {} run of N={} completed late, after {}",
                 options_->backend_name, spec_.name, chunk.n,
                 absl::FormatDuration(options_->run_timeout));
  }
  // Even a late completion fails the batch: the requests' deadline was
  // run_timeout, and the next run must start from a known state.
  return Fail(absl::StrCat("run of N=", chunk.n,
                           " ended in ERT_CMD_STATE_TIMEOUT (then ",
                           StateName(state), " from the driver's TDR)"));
}

absl::Status XrtExecutor::ListTimedOut(xrt::runlist list, const Chunk& chunk) {
  const size_t runs = (chunk.items + chunk.n - 1) / chunk.n;  // rounds
  spdlog::warn(
      "{}: {} runlist of {} runs still in flight after its timeout; waiting "
      "up to {} for the driver's TDR to end it",
      options_->backend_name, spec_.name, runs,
      absl::FormatDuration(options_->tdr_wait));
  const absl::Time deadline = absl::Now() + options_->tdr_wait;
  std::string ended = "";
  while (ended.empty() && absl::Now() < deadline) {
    try {
      if (list.wait(
              Ms(std::min(deadline - absl::Now(), absl::Milliseconds(100)))) ==
          std::cv_status::no_timeout) {
        ended = "ERT_CMD_STATE_COMPLETED";
      }
    } catch (const xrt::runlist::command_error& e) {
      ended = StateName(e.get_command_state());
    }
  }
  if (ended.empty()) {
    pending_list_ = std::move(list);
    pending_since_ = absl::Now();
    return Fail(absl::StrCat(
        "runlist of ", runs,
        " runs timed out (ERT_CMD_STATE_TIMEOUT) and is still in flight "
        "after the driver's TDR should have ended it; its buffers stay the "
        "device's, so this executor refuses runs until it ends"));
  }
  return Fail(absl::StrCat("runlist of ", runs,
                           " runs ended in ERT_CMD_STATE_TIMEOUT (then ", ended,
                           " from the driver's TDR)"));
}

absl::Status XrtExecutor::CheckPending() {
  if (!Pending()) return absl::OkStatus();
  bool ended = true;
  try {
    if (pending_run_) {
      ended = Ended(pending_run_.state());
    } else if (pending_list_->wait(std::chrono::milliseconds(1)) ==
               std::cv_status::timeout) {
      ended = false;
    }
  } catch (const xrt::runlist::command_error&) {
    ended = true;  // it ended, badly: what the TDR does
  } catch (const std::exception&) {
    ended = false;
  }
  if (ended) {
    spdlog::info("{}: {} command pending since {} has ended; runs resume",
                 options_->backend_name, spec_.name,
                 absl::FormatTime(pending_since_));
    pending_run_ = xrt::run();
    pending_list_.reset();
    return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat(
      options_->backend_name, ": ", spec_.name,
      " has a command in flight since ",
      absl::FormatDuration(absl::Now() - pending_since_),
      " ago that the driver has not ended (check dmesg for amdxdna TDR "
      "messages; tdr_timeout_ms=0 disables the TDR); its buffers cannot be "
      "reused until it ends. The request can be retried"));
}

absl::Status XrtExecutor::RunList(const Chunk& chunk) {
  // chunk.n is the design's round (one item per core); chunk.start is a
  // multiple of it (of the largest sequence).
  const uint32_t round = chunk.n;
  const uint32_t ninstr = instr_words_.at(round);
  const size_t first = chunk.start / round;
  const size_t count = (chunk.items + round - 1) / round;
  // Runs over per-round sub-buffers, built once and reused for every batch.
  while (item_runs_.size() < first + count) {
    const size_t i = item_runs_.size();
    xrt::run run(kernel_);
    run.set_arg(0, kOpcodeDpuSequence);
    run.set_arg(1, instr_.at(round));
    run.set_arg(2, ninstr);
    for (size_t arg = 0; arg < data_.size(); ++arg) {
      run.set_arg(kFirstDataArg + static_cast<int>(arg),
                  Slice(arg, i * round, round));
    }
    item_runs_.push_back(std::move(run));
  }
  xrt::runlist list(ctx_);
  for (size_t i = first; i < first + count; ++i) list.add(item_runs_[i]);
  try {
    list.execute();
  } catch (const std::exception& e) {
    return Fail(absl::StrCat("runlist of ", count,
                             " runs could not be submitted: ", e.what()),
                /*rebuild=*/true);
  }
  try {
    const auto timeout =
        Ms(options_->run_timeout * static_cast<int64_t>(count));
    if (list.wait(timeout) == std::cv_status::timeout) {
      return ListTimedOut(std::move(list), chunk);
    }
  } catch (const xrt::runlist::command_error& e) {
    return Fail(absl::StrCat("runlist of ", count, " runs: a run ended in ",
                             StateName(e.get_command_state())));
  }
  return absl::OkStatus();
}

absl::Status XrtExecutor::Fail(const std::string& what, bool rebuild) {
  ++consecutive_failures_;
  std::string action = "the next run retries on the same hardware context";
  if (Pending()) {
    // The stuck command holds the context and our buffers: replacing the
    // context would neither free them nor make them safe to reuse.
    action = "the context is kept until the command in flight ends";
  } else if (rebuild || consecutive_failures_ >= 2) {
    // The driver restarts a context in place after its TDR; a refused
    // submission or a second failure in a row means it did not recover:
    // start over.
    consecutive_failures_ = 0;
    absl::Status rebuilt = CreateContext(generation_);
    const char* why =
        rebuild ? "submission refused" : "second failure in a row";
    action =
        rebuilt.ok()
            ? absl::StrCat(why, ": rebuilt the hardware context")
            : absl::StrCat(
                  why, ": rebuilding the context failed: ", rebuilt.message());
  }
  spdlog::warn("{}: {} {}; {}", options_->backend_name, spec_.name, what,
               action);
  return absl::UnavailableError(
      absl::StrCat(options_->backend_name, ": ", spec_.name, " ", what, "; ",
                   action, ". The request can be retried"));
}

}  // namespace

#if NPUK_XRT_NPUSIM
std::unique_ptr<Device> NewBackend(const Options& options, xrt::device device,
                                   Misuse misuse) {
  return std::make_unique<XrtDevice>(options, std::move(device), misuse);
}
#else
absl::StatusOr<std::unique_ptr<Device>> NewBackend(const Options& options) {
  auto device = std::make_unique<XrtDevice>(options);
  NPUK_RETURN_IF_ERROR(device->Open());
  return device;
}
#endif

}  // namespace NPUK_XRT_FLAVOR
}  // namespace npuk::xrt_backend

// The npu-sim implementation of the XRT subset in include/. See README.md
// for what it models and how each convention violation shows.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experimental/xrt_kernel.h"
#include "kernels/registry/registry.h"
#include "kernels/vec/cycle_model.h"
#include "server/device/npu_sim/sim_internal.h"
#include "xrt/xrt_kernel.h"

namespace npusim {

namespace txn = npuk::txn;

void Machine::Configure(const Settings& settings) {
  absl::MutexLock lock(&mu_);
  settings_ = settings;
}
Settings Machine::settings() const {
  absl::MutexLock lock(&mu_);
  return settings_;
}
void Machine::InjectFault(const Fault& fault) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(fault);
}
void Machine::ClearFaults() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
}
Stats Machine::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}
void Machine::ResetStats() {
  absl::MutexLock lock(&mu_);
  stats_ = Stats{};
}
void Machine::Seed(uint64_t seed) {
  absl::MutexLock lock(&mu_);
  rng_.seed(seed);
}
bool Machine::TakeFault(Fault* fault) {
  absl::MutexLock lock(&mu_);
  if (faults_.empty()) return false;
  Fault& front = faults_.front();
  if (front.rate < 1.0 &&
      std::uniform_real_distribution<double>(0.0, 1.0)(rng_) >= front.rate) {
    return false;  // this run is spared; the fault stays in force
  }
  *fault = front;
  if (front.runs == 1) {
    faults_.pop_front();
  } else if (front.runs > 1) {
    --front.runs;
  }
  return true;
}
void Machine::Account(const Stats& d) {
  absl::MutexLock lock(&mu_);
  stats_.runs += d.runs;
  stats_.runs_executed += d.runs_executed;
  stats_.runlist_runs += d.runlist_runs;
  stats_.items += d.items;
  stats_.bytes_synced += d.bytes_synced;
  stats_.modelled_device += d.modelled_device;
  stats_.modelled_sync += d.modelled_sync;
  stats_.modelled_compute += d.modelled_compute;
  stats_.compute_cycles += d.compute_cycles;
  stats_.cold_starts += d.cold_starts;
  stats_.tdr_resets += d.tdr_resets;
  stats_.tdr_aborted += d.tdr_aborted;
  stats_.abort_refused += d.abort_refused;
  stats_.bank_copies += d.bank_copies;
  stats_.max_queued = std::max(stats_.max_queued, d.max_queued);
}
bool Machine::AcquireContext() {
  absl::MutexLock lock(&mu_);
  if (contexts_ >= kMaxContexts) return false;
  ++contexts_;
  busy_until_ = std::max(busy_until_, absl::Now());  // the ioctl resumes it
  return true;
}
bool Machine::Wake(absl::Time now, bool force_cold) {
  absl::MutexLock lock(&mu_);
  const bool cold =
      force_cold || (settings_.autosuspend != absl::InfiniteDuration() &&
                     now - busy_until_ >= settings_.autosuspend);
  if (cold) ++stats_.cold_starts;
  busy_until_ = std::max(busy_until_, now);
  return cold;
}
void Machine::BusyUntil(absl::Time t) {
  absl::MutexLock lock(&mu_);
  busy_until_ = std::max(busy_until_, t);
}
void Machine::ReleaseContext() {
  absl::MutexLock lock(&mu_);
  --contexts_;
}

namespace {

// BOs are page-aligned in the simulated address space, as on the device.
constexpr uint64_t kPageBytes = 4096;

absl::Duration DmaTime(const Settings& s, uint64_t bytes) {
  if (s.dma_bytes_per_s == 0) return absl::ZeroDuration();
  return absl::Nanoseconds(static_cast<double>(bytes) * 1e9 /
                           static_cast<double>(s.dma_bytes_per_s));
}

constexpr uint32_t kArgFromDeclaration = UINT32_MAX;

// Resolves streams without an argument from the core's declaration and
// checks that the streams are the declaration's: one MM2S stream per device
// input argument and one S2MM stream for the output, each moving that
// argument's bytes per item. Returns why not, or "" when they are.
std::string MatchDeclaration(XclbinImpl& x) {
  const npuk::KernelSpec& spec = *x.core;
  const size_t inputs = spec.device_args.size();
  std::vector<int> seen(inputs + 1, 0);
  for (XclbinImpl::Stream& s : x.streams) {
    if (s.arg == kArgFromDeclaration) {
      for (const npuk::ShimStream& d : spec.design.streams) {
        if (d.fifo == s.fifo) s.arg = d.arg;
      }
      if (s.arg == kArgFromDeclaration) {
        return absl::StrCat("stream ", s.fifo, " names no argument and the ",
                            spec.name, " design has no objectfifo so named");
      }
    }
    if (s.arg > inputs) {
      return absl::StrCat("stream ", s.fifo, " carries argument ", s.arg,
                          " but ", spec.name, " has ", inputs + 1);
    }
    const bool output = s.arg == inputs;
    if (output != (s.dir == txn::Direction::kS2MM)) {
      return absl::StrCat("stream ", s.fifo, " runs the wrong way for ",
                          output ? "the output" : "an input");
    }
    const size_t want = output ? spec.output_bytes() : spec.arg_bytes(s.arg);
    if (s.item_bytes != want) {
      return absl::StrCat("stream ", s.fifo, " moves ", s.item_bytes,
                          " bytes per item, argument ", s.arg, " has ", want);
    }
    ++seen[s.arg];
  }
  for (size_t a = 0; a <= inputs; ++a) {
    if (seen[a] != 1) {
      return absl::StrCat("argument ", a, " has ", seen[a],
                          " streams instead of one");
    }
  }
  return "";
}

std::shared_ptr<const XclbinImpl> ParseXclbin(std::string_view text,
                                              const std::string& origin) {
  auto fail = [&](const std::string& why) -> std::runtime_error {
    return std::runtime_error(absl::StrCat("xclbin ", origin, ": ", why));
  };
  auto x = std::make_shared<XclbinImpl>();
  std::vector<std::string> lines =
      absl::StrSplit(absl::string_view(text.data(), text.size()), '\n');
  if (lines.empty() || lines[0] != "npu-sim-xclbin 1") {
    throw fail(
        "not an npu-sim xclbin (first line must be \"npu-sim-xclbin 1\"); a "
        "real aiecc xclbin needs the xrt backend on NPU hardware");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f =
        absl::StrSplit(lines[i], ' ', absl::SkipEmpty());
    if (f.empty() || f[0][0] == '#') continue;
    try {
      if (f[0] == "uuid" && f.size() == 2) {
        x->uuid = xrt::uuid(f[1]);
      } else if (f[0] == "kernel" && f.size() == 2) {
        x->kernel_name = f[1];
      } else if (f[0] == "core" && f.size() == 2) {
        x->core = npuk::FindKernel(f[1]);
        if (x->core == nullptr) {
          throw std::invalid_argument(
              absl::StrCat("no registered kernel \"", f[1],
                           "\"; registered: ", npuk::KernelNames()));
        }
      } else if (f[0] == "arg" && (f.size() == 4 || f.size() == 5)) {
        XclbinImpl::Arg a{f[2], f[3], f.size() == 5 ? std::stoi(f[4]) : -1};
        x->args[std::stoi(f[1])] = a;
      } else if (f[0] == "stream" && (f.size() == 5 || f.size() == 6) &&
                 (f[1] == "mm2s" || f[1] == "s2mm")) {
        // The argument is optional: without it, the core's declaration
        // says which argument the objectfifo carries.
        x->streams.push_back(
            {f[1] == "mm2s" ? txn::Direction::kMM2S : txn::Direction::kS2MM,
             static_cast<uint32_t>(std::stoul(f[2])), f[3],
             static_cast<uint32_t>(std::stoul(f[4])),
             f.size() == 6 ? static_cast<uint32_t>(std::stoul(f[5]))
                           : kArgFromDeclaration});
      } else {
        throw std::invalid_argument("unknown directive");
      }
    } catch (const std::exception& e) {
      throw fail(absl::StrCat("line ", i + 1, " \"", lines[i],
                              "\" is malformed (", e.what(), ")"));
    }
  }
  if (!x->uuid || x->kernel_name.empty() || x->core == nullptr) {
    throw fail(absl::StrCat("needs a uuid, a kernel name and a core (one of ",
                            npuk::KernelNames(), ")"));
  }
  if (std::string why = MatchDeclaration(*x); !why.empty()) {
    throw fail(absl::StrCat(
        why, "; the xclbin does not match the ", x->core->name,
        " declaration, regenerate it (npuk_txn_tool sim-package)"));
  }
  return x;
}

const XclbinImpl& XclbinOf(const KernelImpl& k) { return *k.xclbin; }

}  // namespace

std::shared_ptr<Machine> MachineOf(const xrt::device& device) {
  return device.impl()->machine;
}

HwContextImpl::~HwContextImpl() {
  if (device) device.impl()->machine->ReleaseContext();
}

// ---------------------------------------------------------------------------
// The command queue of a hardware context, and the TDR.

namespace {

Machine& MachineOfContext(const HwContextImpl& c) {
  return *c.device.impl()->machine;
}

// Whether the TDR has fired for the hung command wedging `c`.
bool TdrDue(const HwContextImpl& c, const Settings& s, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
  if (!c.wedged) return false;
  return s.realtime ? now >= c.wedge_started + s.watchdog
                    : c.wedge_waited >= s.watchdog;
}

// Ends a wedge whose TDR is due. The driver stops the context (the hung
// command: TIMEOUT, those queued behind it: ABORT) and restarts it in
// place; the same handle keeps working.
void Settle(HwContextImpl& c, const Settings& s, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
  if (!TdrDue(c, s, now)) return;
  c.wedged = false;
  const absl::Time fired = s.realtime ? c.wedge_started + s.watchdog : now;
  c.busy_until = std::max(c.busy_until, fired);
  Stats d;
  d.tdr_resets = 1;
  MachineOfContext(c).Account(d);
  MachineOfContext(c).BusyUntil(fired);
}

bool Stuck(const HwContextImpl& c, const RunImpl& r)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
  return r.wedge != 0 && c.wedged && c.wedge_id == r.wedge;
}

// Brings `r`'s state up to date once its wedge has ended.
void Resolve(HwContextImpl& c, RunImpl& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
  if (r.wedge == 0 || Stuck(c, r)) return;
  r.state = r.wedge_cause ? ERT_CMD_STATE_TIMEOUT : ERT_CMD_STATE_ABORT;
  if (!r.wedge_cause) {
    Stats d;
    d.tdr_aborted = 1;
    MachineOfContext(c).Account(d);
  }
  r.wedge = 0;
}

// In flight: submitted and neither ended by the TDR nor past its modelled
// completion.
bool InFlight(const HwContextImpl& c, const RunImpl& r, const Settings& s,
              absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
  if (Stuck(c, r)) return true;
  return r.state != ERT_CMD_STATE_NEW && s.realtime && now < r.done_at;
}

// Submits `r` at `now`. The context runs one command at a time: a command
// completes no earlier than its own launch latency and no earlier than the
// command floor after the one queued before it. `chain` (runlists) is the
// completion of the previous run of the chain. A command submitted while
// the context is wedged waits behind the hung one and never executes.
void Submit(HwContextImpl& c, const Settings& s, RunImpl& r, absl::Time now,
            absl::Duration launch, const absl::Time* chain)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
  Resolve(c, r);
  if (InFlight(c, r, s, now)) {
    // XRT's kernel_command::run() refuses a command that is not done.
    throw std::runtime_error("bad command state, can't launch");
  }
  Machine& m = MachineOfContext(c);
  r.wedge = 0;
  r.wedge_cause = false;
  if (c.wedged) {
    r.wedge = c.wedge_id;
    r.state = ERT_CMD_STATE_QUEUED;
    r.done_at = now;
    Stats d;
    d.runs = 1;
    m.Account(d);
    return;
  }
  Fault fault;
  const bool faulty = m.TakeFault(&fault);
  const bool cold = m.Wake(now, faulty && fault.kind == FaultKind::kCold);
  absl::Duration modelled;
  bool hung = false;
  const ert_cmd_state state =
      Execute(r, faulty ? &fault : nullptr, launch, &modelled, &hung);
  if (cold) {
    // Resuming the NPU (firmware reload, context restore) comes first.
    modelled += s.cold_start;
    Stats d;
    d.modelled_device = s.cold_start;
    m.Account(d);
  }
  if (hung) {
    c.wedged = true;
    c.wedge_id += 1;
    c.wedge_started = now;
    c.wedge_waited = absl::ZeroDuration();
    r.wedge = c.wedge_id;
    r.wedge_cause = true;
    r.state = ERT_CMD_STATE_RUNNING;
    r.done_at = now;
    m.BusyUntil(now + s.watchdog);
    return;
  }
  absl::Time done = now;
  if (s.realtime) {
    const absl::Duration work = modelled - launch;
    done = chain != nullptr ? *chain + launch + work
                            : std::max(now + modelled,
                                       c.busy_until + s.command_floor + work);
  }
  c.busy_until = std::max(c.busy_until, done);
  r.state = state;
  r.done_at = done;
  std::erase_if(c.in_flight, [&](absl::Time t) { return t <= now; });
  c.in_flight.push_back(done);
  Stats d;
  d.max_queued = c.in_flight.size();
  m.Account(d);
  m.BusyUntil(done);
}

// Waits up to `timeout` (0: until it ends) for `r`. Its final state, or
// nullopt when the wait timed out with the command still in flight.
std::optional<ert_cmd_state> WaitFor(RunImpl& r,
                                     std::chrono::milliseconds timeout) {
  HwContextImpl& c = *r.kernel->ctx.impl();
  const absl::Time deadline = timeout.count() == 0
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + absl::FromChrono(timeout);
  for (;;) {
    const Settings s = MachineOfContext(c).settings();
    const absl::Time now = absl::Now();
    absl::Time until;
    {
      absl::MutexLock lock(&c.mu);
      Settle(c, s, now);
      Resolve(c, r);
      if (!Stuck(c, r)) {
        if (!s.realtime || r.done_at <= now) return r.state;
        until = r.done_at;
      } else if (s.realtime) {
        until = c.wedge_started + s.watchdog;
      } else {
        // Accounting only: the hung command's time passes while it is
        // waited on.
        const absl::Duration left = s.watchdog - c.wedge_waited;
        if (timeout.count() == 0 || absl::FromChrono(timeout) >= left) {
          c.wedge_waited = s.watchdog;
          continue;
        }
        c.wedge_waited += absl::FromChrono(timeout);
        return std::nullopt;
      }
    }
    if (until > deadline) {
      absl::SleepFor(deadline - absl::Now());
      return std::nullopt;
    }
    absl::SleepFor(until - absl::Now());
  }
}

}  // namespace

RunImpl::~RunImpl() {
  if (!kernel) return;
  HwContextImpl& c = *kernel->ctx.impl();
  const Settings s = MachineOfContext(c).settings();
  bool stuck = false;
  {
    absl::MutexLock lock(&c.mu);
    Settle(c, s, absl::Now());
    stuck = Stuck(c, *this);
  }
  if (stuck && std::uncaught_exceptions() == 0) {
    std::fprintf(stderr,
                 "[XRT] ERROR: xrt::run destructed while command is still in "
                 "progress\n");
    std::abort();
  }
}

// ---------------------------------------------------------------------------
// Execution of one run.

namespace {

struct Transfer {
  txn::Direction dir;
  uint32_t col, channel;
  std::array<uint32_t, txn::kShimBdWords> bd;
  bool landed = false;
};

// The data BO an address falls into, if the NPU can see it: a host_only BO
// passed as a kernel argument in the group that argument is connected to.
// Anything else (group 0, `normal` flags) is memory the NPU's DMA never
// reaches: reads give zeros, writes are lost.
struct Mapping {
  BoImpl* bo = nullptr;
  size_t offset = 0;
};

}  // namespace

ert_cmd_state Execute(RunImpl& run, const Fault* fault, absl::Duration launch,
                      absl::Duration* modelled, bool* hung) {
  const KernelImpl& kernel = *run.kernel;
  const XclbinImpl& xclbin = XclbinOf(kernel);
  Machine* machine = kernel.ctx.get_device().impl()->machine.get();
  const Settings settings = machine->settings();
  *modelled = launch;
  *hung = false;
  Stats delta;
  delta.runs = 1;

  const bool faulty = fault != nullptr;
  if (faulty && fault->kind == FaultKind::kSlow) *modelled += fault->extra;
  if (faulty && fault->kind == FaultKind::kTimeout) {
    *hung = true;
    machine->Account(delta);
    return ERT_CMD_STATE_RUNNING;
  }
  if (faulty && fault->kind == FaultKind::kError) {
    delta.modelled_device = *modelled;
    machine->Account(delta);
    return ERT_CMD_STATE_ERROR;
  }

  auto scalar = [&](int i) -> std::optional<uint64_t> {
    auto it = run.args.find(i);
    if (it == run.args.end()) return std::nullopt;
    if (auto* s = std::get_if<Scalar>(&it->second)) return s->raw;
    return std::nullopt;
  };
  auto bo_arg = [&](int i) -> BoImpl* {
    auto it = run.args.find(i);
    if (it == run.args.end()) return nullptr;
    if (auto* b = std::get_if<xrt::bo>(&it->second)) return b->impl().get();
    return nullptr;
  };
  auto group_of = [&](int i) {
    auto it = xclbin.args.find(i);
    return it == xclbin.args.end() ? -1 : it->second.group;
  };
  auto finish = [&](ert_cmd_state s) {
    delta.modelled_device = *modelled;
    machine->Account(delta);
    return s;
  };

  // The firmware only knows opcode 3 (DPU sequence) for these xclbins.
  if (scalar(0).value_or(0) != 3) return finish(ERT_CMD_STATE_ERROR);

  // Instruction fetch. A missing buffer, a zero count, a buffer the
  // firmware cannot see (not cacheable in group_id(1)) or a count past its
  // end (e.g. bytes instead of words): nothing executes and the command
  // still completes, the prior attempt's silent all-zero symptom.
  BoImpl* instr = bo_arg(1);
  const uint64_t ninstr = scalar(2).value_or(0);
  if (instr == nullptr || ninstr == 0 ||
      instr->flags != xrt::bo::flags::cacheable ||
      static_cast<int>(instr->group) != group_of(1) ||
      ninstr * 4 > instr->size) {
    return finish(ERT_CMD_STATE_COMPLETED);
  }
  std::vector<uint32_t> words(ninstr);
  std::memcpy(words.data(), instr->device_bytes(), ninstr * 4);
  absl::StatusOr<txn::Program> program = txn::Parse(words);
  if (!program.ok()) return finish(ERT_CMD_STATE_COMPLETED);
  delta.runs_executed = 1;

  auto visible = [&](int argno) -> BoImpl* {
    BoImpl* b = bo_arg(argno);
    if (b == nullptr || b->flags != xrt::bo::flags::host_only ||
        static_cast<int>(b->group) != group_of(argno)) {
      return nullptr;
    }
    return b;
  };
  auto resolve = [&](uint64_t address, size_t len) -> Mapping {
    for (const auto& [argno, value] : run.args) {
      if (argno < 3) continue;
      BoImpl* b = visible(argno);
      if (b != nullptr && address >= b->address &&
          address + len <= b->address + b->size) {
        return {b, static_cast<size_t>(address - b->address)};
      }
    }
    return {};
  };

  // Shim register file and the transfers the stream starts.
  std::map<std::pair<uint32_t, uint32_t>,
           std::array<uint32_t, txn::kShimBdWords>>
      bds;
  std::vector<Transfer> transfers;
  for (const txn::Op& op : program->ops) {
    const uint32_t off = txn::OffsetOf(op.address());
    const uint32_t col = txn::ColumnOf(op.address());
    const bool shim = txn::RowOf(op.address()) == 0;
    const bool in_bds =
        shim && off >= txn::kShimBdBase &&
        off < txn::kShimBdBase + txn::kShimBdCount * txn::kShimBdStride;
    const uint32_t bd_id = (off - txn::kShimBdBase) / txn::kShimBdStride;
    const uint32_t bd_word = (off - txn::kShimBdBase) % txn::kShimBdStride / 4;
    switch (op.opcode) {
      case txn::kOpBlockWrite:
        if (in_bds) {
          auto& bd = bds[{col, bd_id}];
          for (size_t i = 0; i < op.block().size() && bd_word + i < 8; ++i) {
            bd[bd_word + i] = op.block()[i];
          }
        }
        break;
      case txn::kOpAddressPatch:
        if (in_bds && bd_word == 1) {
          BoImpl* b = visible(3 + static_cast<int>(op.arg_idx()));
          const uint64_t addr = b ? b->address + op.arg_plus() : 0;
          auto& bd = bds[{col, bd_id}];
          bd[1] = static_cast<uint32_t>(addr);
          bd[2] = (bd[2] & ~0xFFFFu) | static_cast<uint32_t>(addr >> 32);
        }
        break;
      case txn::kOpWrite:
        if (in_bds) {
          bds[{col, bd_id}][bd_word] = op.value();
        } else if (shim && off >= 0x1D204 && off <= 0x1D21C &&
                   (off - 0x1D204) % 8 == 0) {
          const txn::Direction dir =
              off >= 0x1D214 ? txn::Direction::kMM2S : txn::Direction::kS2MM;
          transfers.push_back({dir, col, ((off - 0x1D204) % 0x10) / 8,
                               bds[{col, op.value() & 0xF}]});
        }
        break;
      case txn::kOpSync:
        for (Transfer& t : transfers) {
          if (t.dir == op.sync_direction() && t.col == op.sync_column() &&
              t.channel == op.sync_channel()) {
            t.landed = true;
          }
        }
        break;
      default:
        break;
    }
  }

  // MM2S: gather each input stream from DDR.
  uint64_t dma_bytes = 0;
  auto gather = [&](uint32_t channel) {
    std::vector<uint8_t> bytes;
    for (const Transfer& t : transfers) {
      if (t.dir != txn::Direction::kMM2S || t.channel != channel) continue;
      const uint32_t len = txn::ShimBdLengthBytes(t.bd);
      const size_t at = bytes.size();
      bytes.resize(at + len, 0);
      // A strided BD (windowed input) reads windows of D0 words every D1
      // step words; the stream carries the windows back to back.
      const txn::ShimBdAccess p = txn::ShimBdPattern(t.bd);
      const uint64_t span =
          p.window_words == 0 || p.windows == 0
              ? len
              : (uint64_t{p.windows - 1} * p.stride_words + p.window_words) * 4;
      const Mapping m = resolve(txn::ShimBdBaseAddress(t.bd), span);
      if (m.bo && p.window_words == 0) {
        std::memcpy(bytes.data() + at, m.bo->device_bytes() + m.offset, len);
      } else if (m.bo) {
        const size_t window = size_t{p.window_words} * 4;
        for (size_t w = 0; w < p.windows && (w + 1) * window <= len; ++w) {
          std::memcpy(
              bytes.data() + at + w * window,
              m.bo->device_bytes() + m.offset + w * size_t{p.stride_words} * 4,
              window);
        }
      }
      dma_bytes += len;
    }
    return bytes;
  };

  // The core: the kernel's reference, the same entry points the AIE core
  // links, one item at a time as the core takes them off its objectfifos.
  const npuk::KernelSpec& spec = *xclbin.core;
  std::vector<std::vector<uint8_t>> inputs(spec.device_args.size());
  std::vector<uint32_t> in_items;
  const XclbinImpl::Stream* out_stream = nullptr;
  for (const auto& s : xclbin.streams) {
    if (s.dir == txn::Direction::kMM2S) {
      inputs[s.arg] = gather(s.channel);
      // A stepped input's item count follows from the records (below).
      if (s.arg == spec.stepped_arg()) continue;
      // What the core takes per item: a windowed input's whole window.
      const size_t per_item = s.item_bytes + spec.arg_halo_bytes(s.arg);
      if (inputs[s.arg].size() % per_item != 0) *hung = true;
      in_items.push_back(
          static_cast<uint32_t>(inputs[s.arg].size() / per_item));
    } else {
      out_stream = &s;
    }
  }
  if (out_stream == nullptr || in_items.empty())
    return finish(ERT_CMD_STATE_ERROR);
  const uint32_t items = *std::min_element(in_items.begin(), in_items.end());
  if (*std::max_element(in_items.begin(), in_items.end()) != items) {
    *hung = true;  // the core blocks waiting for the shorter stream
  }
  // The column design: each column's mem tile hands a core its item only
  // once a whole round (one item per core) has landed, and joins the
  // outputs a round at a time, so a partial round never comes back.
  const uint32_t granule = std::max<uint32_t>(1, spec.design.granule());
  if (items % granule != 0) *hung = true;
  std::vector<uint8_t> produced(size_t{items} * out_stream->item_bytes);
  std::vector<const uint8_t*> item_in(inputs.size());
  // A stepped kernel: each core of a round loops over its own record's
  // steps while the mem tile splits the step stream a round-step at a time,
  // so the records of a round must agree and the stream must hold at least
  // their steps; otherwise cores wait for tiles that never come (the run
  // hangs, as on the NPU). Tiles past the records' steps stay unread: the
  // sequence waits only on the output.
  uint64_t rounds = 0;
  uint64_t round_steps = 0;
  if (spec.is_stepped() && !*hung) {
    for (size_t a = 0; a < inputs.size(); ++a) item_in[a] = inputs[a].data();
    const size_t rec_arg = npuk::RecordArg(spec);
    const size_t rec_stride = spec.arg_bytes(rec_arg);
    const uint8_t* records = inputs[rec_arg].data() + npuk::RecordOffset(spec);
    for (uint32_t r0 = 0; r0 < items; r0 += granule) {
      const size_t steps = spec.steps_of(records + size_t{r0} * rec_stride);
      for (uint32_t i = r0; i < r0 + granule; ++i) {
        if (spec.steps_of(records + size_t{i} * rec_stride) != steps) {
          *hung = true;
        }
      }
      ++rounds;
      round_steps += steps;
    }
    if (npuk::StepSpanOfArgs(spec, item_in.data(), items) >
        inputs[spec.stepped_arg()].size()) {
      *hung = true;
    }
    if (!*hung) spec.reference(item_in.data(), produced.data(), items);
  } else if (!spec.is_stepped()) {
    for (uint32_t i = 0; i < items; ++i) {
      for (size_t a = 0; a < inputs.size(); ++a) {
        item_in[a] = inputs[a].data() +
                     size_t{i} * (spec.arg_bytes(a) + spec.arg_halo_bytes(a));
      }
      spec.reference(item_in.data(),
                     produced.data() + size_t{i} * out_stream->item_bytes, 1);
    }
  }
  delta.items = items;
  if (faulty && fault->kind == FaultKind::kZeros) {
    std::fill(produced.begin(), produced.end(), 0);
  } else if (faulty && fault->kind == FaultKind::kGarbage) {
    std::mt19937 rng(items);
    for (uint8_t& b : produced) b = static_cast<uint8_t>(rng());
  }

  // S2MM: scatter the core's output; only transfers the stream waited on
  // have landed when the run completes.
  size_t at = 0;
  for (const Transfer& t : transfers) {
    if (t.dir != txn::Direction::kS2MM || t.channel != out_stream->channel) {
      continue;
    }
    const uint32_t len = txn::ShimBdLengthBytes(t.bd);
    if (at + len > produced.size()) {
      // The sync waits for bytes the core never produces.
      if (t.landed) *hung = true;
      break;
    }
    const Mapping m = resolve(txn::ShimBdBaseAddress(t.bd), len);
    if (t.landed && m.bo) {
      std::memcpy(m.bo->device_bytes() + m.offset, produced.data() + at, len);
    }
    at += len;
    dma_bytes += len;
  }
  // Core compute from the cycle model, overlapped with the DMA; the first
  // item's transfers (pipeline fill) are not overlapped.
  const npuk::vec::KernelCost cost = npuk::vec::CostOf(
      spec.name, settings.vector_kernels ? npuk::vec::Variant::kVector
                                         : npuk::vec::Variant::kScalar);
  const double cycles =
      spec.is_stepped()
          ? npuk::vec::StepCycles(cost, rounds, round_steps)
          : npuk::vec::CoreCycles(cost, items, static_cast<int>(granule));
  const absl::Duration compute =
      absl::Nanoseconds(cycles * 1e9 / npuk::vec::kAie2.clock_hz);
  const absl::Duration dma = DmaTime(settings, dma_bytes);
  const absl::Duration fill =
      items > 0 ? dma / static_cast<int64_t>(items) : absl::ZeroDuration();
  *modelled += std::max(dma, compute) +
               (compute > absl::ZeroDuration() ? fill : absl::ZeroDuration());
  delta.modelled_compute = compute;
  delta.compute_cycles = cycles;
  if (*hung) {
    machine->Account(delta);
    return ERT_CMD_STATE_RUNNING;
  }
  return finish(ERT_CMD_STATE_COMPLETED);
}

}  // namespace npusim

// ---------------------------------------------------------------------------
// The XRT handles.

namespace xrt {
inline namespace npusim {

using ::npusim::Machine;

uuid::uuid(const std::string& text) {
  std::string hex;
  for (char c : text) {
    if (c != '-') hex.push_back(c);
  }
  if (hex.size() != 32 ||
      hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    throw std::invalid_argument("uuid: expected 32 hex digits, got " + text);
  }
  for (size_t i = 0; i < 16; ++i) {
    bytes_[i] = static_cast<unsigned char>(
        std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
}

std::string uuid::to_string() const {
  std::string out;
  for (unsigned char b : bytes_)
    absl::StrAppend(&out, absl::Hex(b, absl::kZeroPad2));
  return out;
}

uuid::operator bool() const {
  return std::any_of(bytes_.begin(), bytes_.end(),
                     [](unsigned char b) { return b != 0; });
}

xclbin::xclbin(const std::string& filename) {
  std::ifstream in(filename, std::ios::binary);
  if (!in) {
    throw std::runtime_error("Failed to open xclbin file: " + filename);
  }
  const std::string text(std::istreambuf_iterator<char>(in), {});
  impl_ = ::npusim::ParseXclbin(text, filename);
}

xclbin::xclbin(std::string_view data)
    : impl_(::npusim::ParseXclbin(data, "(in memory)")) {}

uuid xclbin::get_uuid() const {
  if (!impl_) throw std::runtime_error("xclbin: empty xclbin has no uuid");
  return impl_->uuid;
}

std::vector<xclbin::kernel> xclbin::get_kernels() const {
  if (!impl_) return {};
  return {kernel(impl_->kernel_name)};
}

device::device(unsigned int didx) {
  if (didx != 0) {
    throw std::runtime_error(absl::StrCat("No such device: index ", didx,
                                          " (npu-sim simulates device 0)"));
  }
  // A new simulated NPU for every open (machine.h): nothing is shared with
  // other devices in the process.
  impl_ = std::make_shared<::npusim::DeviceImpl>();
  impl_->machine = std::make_shared<Machine>();
}

uuid device::register_xclbin(const xrt::xclbin& xclbin) {
  if (!impl_) throw std::runtime_error("register_xclbin on an empty device");
  const uuid id = xclbin.get_uuid();
  absl::MutexLock lock(&impl_->mu);
  impl_->registered[id.to_string()] = xclbin;
  return id;
}

hw_context::hw_context(const xrt::device& device, const xrt::uuid& xclbin_id,
                       const cfg_param_type& /*cfg_param*/)
    : hw_context(device, xclbin_id, access_mode::shared) {}

hw_context::hw_context(const xrt::device& device, const xrt::uuid& xclbin_id,
                       access_mode mode) {
  if (!device) throw std::runtime_error("hw_context on an empty device");
  xrt::xclbin found;
  {
    absl::MutexLock lock(&device.impl()->mu);
    auto it = device.impl()->registered.find(xclbin_id.to_string());
    if (it == device.impl()->registered.end()) {
      throw std::runtime_error("hw_context: xclbin " + xclbin_id.to_string() +
                               " was not registered on this device");
    }
    found = it->second;
  }
  if (!device.impl()->machine->AcquireContext()) {
    throw std::system_error(
        std::make_error_code(std::errc::no_space_on_device),
        "DRM_IOCTL_AMDXDNA_CREATE_HWCTX IOCTL failed (err=-28): npu-sim has "
        "6 hardware contexts, like Phoenix");
  }
  impl_ = std::make_shared<::npusim::HwContextImpl>();
  impl_->device = device;
  impl_->xclbin = found;
  impl_->mode = mode;
}

void hw_context::update_qos(const qos_type&) {}
xrt::device hw_context::get_device() const { return impl_->device; }
xrt::uuid hw_context::get_xclbin_uuid() const {
  return impl_->xclbin.get_uuid();
}
xrt::xclbin hw_context::get_xclbin() const { return impl_->xclbin; }
hw_context::access_mode hw_context::get_mode() const { return impl_->mode; }

bo::bo(const xrt::device& device, size_t sz, flags f, memory_group grp) {
  if (!device) throw std::runtime_error("bo on an empty device");
  if (sz == 0) throw std::invalid_argument("bo: size must be > 0");
  impl_ = std::make_shared<::npusim::BoImpl>();
  impl_->storage = std::make_shared<::npusim::BoStorage>();
  impl_->storage->host.assign(sz, 0);
  impl_->storage->device.assign(sz, 0);
  impl_->size = sz;
  impl_->flags = f;
  impl_->group = grp;
  impl_->machine = device.impl()->machine;
  absl::MutexLock lock(&device.impl()->mu);
  impl_->address = device.impl()->next_address;
  constexpr uint64_t kPage = ::npusim::kPageBytes;
  device.impl()->next_address += (sz + kPage - 1) / kPage * kPage;
}

bo::bo(const xrt::hw_context& hwctx, size_t sz, flags f, memory_group grp)
    : bo(hwctx.get_device(), sz, f, grp) {}

bo::bo(const bo& parent, size_t size, size_t offset) {
  if (!parent || size == 0 || offset + size > parent.size()) {
    throw std::invalid_argument(absl::StrCat("sub-buffer [", offset, ", ",
                                             offset + size,
                                             ") is outside its parent"));
  }
  impl_ = std::make_shared<::npusim::BoImpl>(*parent.impl_);
  impl_->offset += offset;
  impl_->size = size;
  impl_->address += offset;
}

size_t bo::size() const { return impl_ ? impl_->size : 0; }
uint64_t bo::address() const { return impl_ ? impl_->address : 0; }
bo::memory_group bo::get_memory_group() const { return impl_->group; }
bo::flags bo::get_flags() const { return impl_->flags; }

void bo::sync(xclBOSyncDirection dir, size_t sz, size_t offset) {
  if (!impl_ || offset + sz > impl_->size) {
    throw std::invalid_argument("bo::sync: range outside the buffer");
  }
  uint8_t* host = impl_->host_bytes() + offset;
  uint8_t* dev = impl_->device_bytes() + offset;
  if (dir == XCL_BO_SYNC_BO_TO_DEVICE) {
    std::memcpy(dev, host, sz);
  } else if (dir == XCL_BO_SYNC_BO_FROM_DEVICE) {
    std::memcpy(host, dev, sz);
  }
  const ::npusim::Settings s = impl_->machine->settings();
  ::npusim::Stats d;
  d.bytes_synced = sz;
  d.modelled_sync = ::npusim::DmaTime(s, sz);
  impl_->machine->Account(d);
  // Short syncs are only accounted: a sleep shorter than ~50 us costs more
  // than it models.
  if (s.realtime && d.modelled_sync >= absl::Microseconds(50)) {
    absl::SleepFor(d.modelled_sync);
  }
}

void* bo::map() {
  if (!impl_) throw std::runtime_error("map of an empty bo");
  return impl_->host_bytes();
}

void bo::write(const void* src, size_t size, size_t seek) {
  if (!impl_ || seek + size > impl_->size) {
    throw std::invalid_argument("bo::write: range outside the buffer");
  }
  std::memcpy(impl_->host_bytes() + seek, src, size);
}

void bo::read(void* dst, size_t size, size_t skip) {
  if (!impl_ || skip + size > impl_->size) {
    throw std::invalid_argument("bo::read: range outside the buffer");
  }
  std::memcpy(dst, impl_->host_bytes() + skip, size);
}

kernel::kernel(const xrt::hw_context& ctx, const std::string& name) {
  if (!ctx) throw std::runtime_error("kernel on an empty hw_context");
  const ::npusim::XclbinImpl* x = ctx.get_xclbin().impl();
  if (x->kernel_name != name) {
    throw std::runtime_error("No such kernel \"" + name +
                             "\" in xclbin (it has \"" + x->kernel_name +
                             "\")");
  }
  impl_ = std::make_shared<::npusim::KernelImpl>();
  impl_->ctx = ctx;
  impl_->xclbin = x;
}

int kernel::group_id(int argno) const {
  auto it = impl_->xclbin->args.find(argno);
  if (it == impl_->xclbin->args.end()) {
    throw std::out_of_range(absl::StrCat("kernel has no argument ", argno));
  }
  return it->second.group;
}

run::run(const kernel& krnl) {
  if (!krnl) throw std::runtime_error("run of an empty kernel");
  impl_ = std::make_shared<::npusim::RunImpl>();
  impl_->kernel = krnl.impl();
}

void run::set_bo_arg(int index, const xrt::bo& bo) {
  // XRT's validate_bo_at_index (xrt_kernel.cpp, 2.17 and newest): a BO in
  // another bank than the one the argument is connected to is not refused;
  // XRT warns and passes a clone in the connected bank, filled from the
  // BO's device contents now. The kernel then reads that snapshot and
  // writes its output into the clone, which nobody reads back.
  const ::npusim::XclbinImpl& x = *impl_->kernel->xclbin;
  auto it = x.args.find(index);
  if (!bo || it == x.args.end() || it->second.kind != "bo" ||
      static_cast<int>(bo.impl()->group) == it->second.group) {
    impl_->args[index] = bo;
    return;
  }
  const ::npusim::BoImpl& src = *bo.impl();
  std::fprintf(stderr,
               "[XRT] WARNING: Kernel %s has no compute units with "
               "connectivity required for global argument at index %d. The "
               "argument is allocated in bank %u, the compute unit is "
               "connected to bank %d. Allocating local copy of argument "
               "buffer in connected bank.\n",
               x.kernel_name.c_str(), index, src.group, it->second.group);
  xrt::device device = impl_->kernel->ctx.get_device();
  xrt::bo clone(device, src.size, src.flags,
                static_cast<xrt::bo::memory_group>(it->second.group));
  ::npusim::BoImpl& dst = *clone.impl();
  std::memcpy(dst.device_bytes(), src.storage->device.data() + src.offset,
              src.size);
  std::memcpy(dst.host_bytes(), dst.device_bytes(), src.size);
  ::npusim::Stats d;
  d.bank_copies = 1;
  src.machine->Account(d);
  impl_->args[index] = std::move(clone);
}

void run::set_scalar_arg(int index, uint64_t raw, size_t bytes) {
  impl_->args[index] = ::npusim::Scalar{raw, bytes};
}

void run::start() {
  ::npusim::HwContextImpl& c = *impl_->kernel->ctx.impl();
  const ::npusim::Settings s = ::npusim::MachineOfContext(c).settings();
  absl::MutexLock lock(&c.mu);
  const absl::Time now = absl::Now();
  ::npusim::Settle(c, s, now);
  ::npusim::Submit(c, s, *impl_, now, s.run_latency, nullptr);
}

ert_cmd_state run::wait(const std::chrono::milliseconds& timeout) const {
  // As XRT: TIMEOUT both when the wait gave up (the command is still in
  // flight) and when the TDR ended the command; state() tells them apart.
  return ::npusim::WaitFor(*impl_, timeout).value_or(ERT_CMD_STATE_TIMEOUT);
}

std::cv_status run::wait2(const std::chrono::milliseconds& timeout) const {
  const std::optional<ert_cmd_state> s = ::npusim::WaitFor(*impl_, timeout);
  if (!s.has_value()) return std::cv_status::timeout;
  if (*s == ERT_CMD_STATE_COMPLETED) return std::cv_status::no_timeout;
  throw command_error(
      *s,
      absl::StrCat("Command failed to complete successfully (state ", *s, ")"));
}

ert_cmd_state run::state() const {
  ::npusim::HwContextImpl& c = *impl_->kernel->ctx.impl();
  const ::npusim::Settings s = ::npusim::MachineOfContext(c).settings();
  absl::MutexLock lock(&c.mu);
  const absl::Time now = absl::Now();
  ::npusim::Settle(c, s, now);
  ::npusim::Resolve(c, *impl_);
  if (!::npusim::Stuck(c, *impl_) && ::npusim::InFlight(c, *impl_, s, now)) {
    return ERT_CMD_STATE_RUNNING;
  }
  return impl_->state;
}

ert_cmd_state run::abort() {
  ::npusim::HwContextImpl& c = *impl_->kernel->ctx.impl();
  const ::npusim::Settings s = ::npusim::MachineOfContext(c).settings();
  absl::MutexLock lock(&c.mu);
  const absl::Time now = absl::Now();
  ::npusim::Settle(c, s, now);
  ::npusim::Resolve(c, *impl_);
  if (impl_->state == ERT_CMD_STATE_NEW) {
    throw std::runtime_error("Cannot abort command that wasn't started");
  }
  if (!::npusim::InFlight(c, *impl_, s, now)) return impl_->state;
  // XRT submits an ERT_ABORT command for the run; amdxdna has no such op
  // (aie2_message.c: "Unsupported op", -EOPNOTSUPP), so the submission
  // fails and the command stays in flight until the TDR ends it.
  ::npusim::Stats d;
  d.abort_refused = 1;
  ::npusim::MachineOfContext(c).Account(d);
  throw std::system_error(
      std::error_code(EOPNOTSUPP, std::generic_category()),
      "DRM_IOCTL_AMDXDNA_EXEC_CMD IOCTL failed (err=-95): amdxdna does not "
      "support ERT_ABORT; the driver's TDR ends the command");
}

runlist::runlist(const xrt::hw_context& hwctx)
    : impl_(std::make_shared<::npusim::RunlistImpl>()) {
  impl_->ctx = hwctx;
}

void runlist::add(const xrt::run& run) {
  if (impl_->executed) {
    throw std::runtime_error("runlist::add after execute(); reset() first");
  }
  impl_->runs.push_back(run);
}

void runlist::execute() {
  if (impl_->runs.empty()) throw std::runtime_error("runlist is empty");
  ::npusim::HwContextImpl& c = *impl_->ctx.impl();
  Machine& m = ::npusim::MachineOfContext(c);
  const ::npusim::Settings s = m.settings();
  absl::MutexLock lock(&c.mu);
  const absl::Time now = absl::Now();
  ::npusim::Settle(c, s, now);
  // A chain costs one full launch and completion, then the per-command
  // cost xrt-smi's cmd-chain test reports (27.7 us on Phoenix) for each
  // further run: 1000 runs come to ~28 us each, one run to ~110 us.
  absl::Time chain;
  bool failed = false;
  for (size_t i = 0; i < impl_->runs.size(); ++i) {
    ::npusim::RunImpl& r = *impl_->runs[i].impl();
    if (failed) {
      // XRT marks the rest of a chain after a failed command aborted.
      ::npusim::Resolve(c, r);
      r.state = ERT_CMD_STATE_ABORT;
      r.done_at = now;
      continue;
    }
    ::npusim::Submit(c, s, r, now,
                     i == 0 ? s.run_latency : s.runlist_run_latency,
                     i == 0 ? nullptr : &chain);
    ::npusim::Stats d;
    d.runlist_runs = 1;
    m.Account(d);
    chain = r.done_at;
    failed = r.wedge == 0 && r.state != ERT_CMD_STATE_COMPLETED;
  }
  impl_->executed = true;
}

std::cv_status runlist::wait(const std::chrono::milliseconds& timeout) const {
  const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
  for (const xrt::run& r : impl_->runs) {
    std::chrono::milliseconds left{0};
    if (timeout.count() != 0) {
      left = std::chrono::milliseconds(std::max<int64_t>(
          1, absl::ToInt64Milliseconds(deadline - absl::Now())));
    }
    if (!::npusim::WaitFor(*r.impl(), left).has_value()) {
      return std::cv_status::timeout;
    }
  }
  for (const xrt::run& r : impl_->runs) {
    const ert_cmd_state st = r.state();
    if (st != ERT_CMD_STATE_COMPLETED) {
      throw command_error(r, st,
                          absl::StrCat("runlist command ended in state ", st));
    }
  }
  return std::cv_status::no_timeout;
}

void runlist::reset() {
  impl_->runs.clear();
  impl_->executed = false;
}

}  // namespace npusim
}  // namespace xrt

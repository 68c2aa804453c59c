"""Triton's system shared-memory extension, used by npuk.Client and
npuk.AsyncClient when the daemon is on the same host (a unix socket or a
loopback address).

Tensors then travel through POSIX shared-memory objects the client creates
(files under /dev/shm, mode 0600) instead of inside the gRPC messages: each
region is registered with the daemon once, inputs are written into it, the
daemon writes the output into it, and the client copies the output back
into the response, so callers see exactly the bytes plain gRPC returns.

Anything that does not fit the scheme goes over plain gRPC: a daemon that
cannot open the object (another user, another host or mount namespace), a
request with typed contents, a request larger than MAX_REGION_BYTES, more
than MAX_REGIONS requests in flight through one client, or a region the
daemon lost (someone unregistered it). Turn it off with NPUK_SHM=0 or
Client(shared_memory=False) / AsyncClient(shared_memory=False).

A request that ends without an answer from the daemon (cancelled, past its
deadline, connection lost) may still be written into by the daemon, so its
region is never reused: it is unregistered and removed, and the next request
gets a new one.

The module is a sans-IO core (_Pool: which region a request gets;
_shm_request/_copy_outputs: the request and response rewriting) with two
faces that do the RPCs: ShmTransport (blocking, for threads) and
AsyncShmTransport (grpc.aio, for one event loop).
"""

import asyncio
import mmap
import os
import secrets
import threading
import weakref
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple

import grpc

from ._proto import grpc_service_pb2 as pb

__all__ = ["ShmTransport", "AsyncShmTransport", "is_local_target",
           "enabled_by_env"]

# /dev/shm is where glibc's shm_open keeps its objects.
SHM_DIR = "/dev/shm"
MIN_REGION_BYTES = 1 << 20
MAX_REGION_BYTES = 1 << 28
MAX_REGIONS = 8  # concurrent requests through one client beyond this: plain
ALIGN = 64

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]", "ip6-localhost")
_PARAMS = ("shared_memory_region", "shared_memory_offset",
           "shared_memory_byte_size")
# Statuses the daemon itself sends once it is done with a request: after
# them it writes nothing more into the region, which may be reused. Any
# other end (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE, ...) may come from
# the client's side while the daemon still runs the request.
_ANSWERED = frozenset((
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNAUTHENTICATED))


def is_local_target(target: str) -> bool:
    """True for unix:/unix-abstract: targets and loopback HOST:PORT."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = target
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if host.startswith(prefix):
            host = host[len(prefix):]
    if host.startswith("["):
        host = host[:host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host in _LOOPBACK or host.startswith("127.")


def enabled_by_env() -> bool:
    """NPUK_SHM=0/false/no/off turns shared memory off for every client."""
    return os.environ.get("NPUK_SHM", "1").strip().lower() not in (
        "0", "false", "no", "off")


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class _Region:
    """One shared-memory object, mapped here and registered with the daemon
    under the same name."""

    def __init__(self, size: int) -> None:
        self.name = "npuk_%d_%s" % (os.getpid(), secrets.token_hex(6))
        self.key = "/" + self.name
        self.path = os.path.join(SHM_DIR, self.name)
        self.size = size
        # Set when the request that waited for this region's registration
        # was cancelled: the registration then removes it when it ends.
        self.orphaned = False
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
            self.map = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            _unlink(self.path)
            raise
        os.close(fd)

    def unlink(self) -> None:
        _unlink(self.path)

    def close(self) -> None:
        try:
            self.map.close()
        except (BufferError, ValueError):
            pass
        _unlink(self.path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _unlink_all(paths: List[str]) -> None:
    for p in paths:
        _unlink(p)


def _is_shm_error(e: grpc.RpcError) -> bool:
    details = (e.details() or "") if hasattr(e, "details") else ""
    return e.code() == grpc.StatusCode.INVALID_ARGUMENT and (
        "shared memory" in details or "shared-memory" in details or
        "shared_memory" in details)


def _region_lost(e: grpc.RpcError) -> bool:
    """The daemon no longer has the region (someone unregistered it); other
    shared-memory errors (an output that does not fit, input sizes that
    disagree with the shape) leave it usable."""
    return "not registered" in ((e.details() or "")
                                if hasattr(e, "details") else "")


def _refusal(e: grpc.RpcError) -> Optional[str]:
    """Why the daemon can never use our memory (it refused a registration),
    or None for a transient failure that only skips one request."""
    if e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return None
    return "%s: %s" % (e.code().name, e.details())


def _region_size(need: int) -> int:
    size = MIN_REGION_BYTES
    while size < need:
        size *= 2
    return size


def _raw_inputs(request: Any) -> List[bytes]:
    """The request's raw input bytes, read out of the message once: each
    read of a protobuf bytes field copies it, and a sequence attention
    request carries megabytes."""
    return list(request.raw_input_contents)


def _need(request: Any, raws: List[bytes]) -> int:
    """Bytes of region `request` (raw inputs `raws`) needs; 0 when it must
    go plain."""
    if (len(request.inputs) == 0 or
            len(raws) != len(request.inputs) or
            any(len(t.parameters) for t in request.inputs) or
            len(request.outputs) > 1):
        return 0
    inputs = sum(_align(len(b)) for b in raws)
    # The output is at most a few times the input for every model; the
    # daemon says so (INVALID_ARGUMENT) when it does not fit, and the
    # request then goes plain.
    need = max(MIN_REGION_BYTES, 4 * inputs)
    return need if need <= MAX_REGION_BYTES else 0


def _register_request(region: _Region) -> Any:
    return pb.SystemSharedMemoryRegisterRequest(
        name=region.name, key=region.key, offset=0, byte_size=region.size)


def _unregister_request(region: _Region) -> Any:
    return pb.SystemSharedMemoryUnregisterRequest(name=region.name)


def _shm_request(request: Any, raws: List[bytes], region: _Region,
                 output: str) -> Tuple[Any, int]:
    """`request` with its inputs (`raws`) written into `region` and its one
    output (`output`) placed after them; returns the request and that
    offset."""
    # Everything but the raw bytes (which go into the region).
    shm_req = pb.ModelInferRequest(model_name=request.model_name,
                                   model_version=request.model_version,
                                   id=request.id)
    for k, v in request.parameters.items():
        shm_req.parameters[k].CopyFrom(v)
    shm_req.inputs.extend(request.inputs)
    offset = 0
    for t, data in zip(shm_req.inputs, raws):
        region.map[offset:offset + len(data)] = data
        t.parameters["shared_memory_region"].string_param = region.name
        t.parameters["shared_memory_offset"].int64_param = offset
        t.parameters["shared_memory_byte_size"].int64_param = len(data)
        offset += _align(len(data))
    o = shm_req.outputs.add()
    if request.outputs:
        o.CopyFrom(request.outputs[0])
    o.name = output
    o.parameters["shared_memory_region"].string_param = region.name
    o.parameters["shared_memory_offset"].int64_param = offset
    o.parameters["shared_memory_byte_size"].int64_param = region.size - offset
    return shm_req, offset


def _copy_outputs(resp: Any, region: _Region, out_offset: int) -> None:
    """Moves the outputs the daemon wrote into `region` into the response's
    raw_output_contents, as plain gRPC returns them."""
    for out in resp.outputs:
        p = out.parameters
        if "shared_memory_byte_size" in p:
            n = min(max(p["shared_memory_byte_size"].int64_param, 0),
                    region.size - out_offset)
            resp.raw_output_contents.append(
                bytes(region.map[out_offset:out_offset + n]))
            for k in _PARAMS:
                if k in p:
                    del p[k]


class _Pool:
    """Which region each request gets; no I/O, thread-safe (every method
    holds the lock only for list operations, so it is safe on an event loop
    too). A region is either free, lent to one request, or being created;
    at most MAX_REGIONS of them exist at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: List[_Region] = []
        self._all: List[_Region] = []  # registered: free or lent
        self._creating = 0
        self.closed = False
        self._paths: List[str] = []  # every object on disk, for the finalizer
        self._finalizer = weakref.finalize(self, _unlink_all, self._paths)
        self.output_names: Dict[str, str] = {}

    def take(self, need: int) -> Tuple[Optional[_Region], Optional[_Region],
                                       int]:
        """(a free region of >= need bytes, None, 0); or (None, a free region
        to unregister or None, the size of the region to create); or
        (None, None, 0) when every slot is lent."""
        with self._lock:
            if self.closed:
                return None, None, 0
            for i, r in enumerate(self._free):
                if r.size >= need:
                    return self._free.pop(i), None, 0
            evict = None
            if len(self._all) + self._creating >= MAX_REGIONS:
                if not self._free:
                    return None, None, 0
                # Replace the largest free region by one big enough.
                evict = max(self._free, key=lambda r: r.size)
                self._free.remove(evict)
                self._all.remove(evict)
            self._creating += 1
        return None, evict, _region_size(need)

    def create(self, size: int) -> _Region:
        """A new object for the slot take() reserved (OSError: the slot is
        given back)."""
        try:
            region = _Region(size)
        except BaseException:
            self.abandon()
            raise
        with self._lock:
            self._paths.append(region.path)
        return region

    def abandon(self) -> None:
        """The reserved slot's region will not be registered."""
        with self._lock:
            self._creating -= 1

    def added(self, region: _Region) -> bool:
        """`region` is registered and lent to the request that reserved it;
        False when the pool closed meanwhile (unregister and discard it)."""
        with self._lock:
            self._creating -= 1
            if self.closed:
                return False
            self._all.append(region)
            return True

    def release(self, region: _Region) -> bool:
        """The request is done with `region` and the daemon writes no more
        into it. False when it is no longer in the pool (closed or lost):
        then discard it."""
        with self._lock:
            if region in self._all and not self.closed:
                self._free.append(region)
                return True
            return False

    def forget(self, region: _Region) -> None:
        """Takes `region` out of the pool for good (it is then unregistered
        and discarded)."""
        with self._lock:
            if region in self._free:
                self._free.remove(region)
            if region in self._all:
                self._all.remove(region)

    def discard(self, region: _Region) -> None:
        """Unmaps `region` and removes its object."""
        region.close()
        with self._lock:
            if region.path in self._paths:
                self._paths.remove(region.path)

    def drain(self) -> Tuple[List[_Region], List[_Region]]:
        """Closes the pool: (free regions, regions lent to requests still
        running). Both are to be unregistered; the lent ones are unlinked
        now and unmapped when their request ends (release() says False)."""
        with self._lock:
            self.closed = True
            free = list(self._free)
            lent = [r for r in self._all if r not in self._free]
            self._free.clear()
            self._all.clear()
        for r in lent:
            r.unlink()
        return free, lent

    def regions(self) -> Tuple[List[str], List[str]]:
        """Names of (every registered region, the free ones)."""
        with self._lock:
            return ([r.name for r in self._all], [r.name for r in self._free])

    def finalize(self) -> None:
        self._finalizer()


class _Counters:
    """What both faces share: the pool, the counters, the decisions."""

    # Each face's: out of the pool, off the disk, unregistered (its own way).
    _retire: Callable[[_Region], None]

    def __init__(self) -> None:
        self._pool = _Pool()
        self.disabled_reason: Optional[str] = None
        self.requests = 0   # answered through shared memory
        self.fallbacks = 0  # sent plain instead

    @property
    def active(self) -> bool:
        return self.disabled_reason is None

    def regions(self) -> Tuple[List[str], List[str]]:
        """Names of (every region registered, the free ones) right now."""
        return self._pool.regions()

    def _create(self, size: int) -> Optional[_Region]:
        try:
            return self._pool.create(size)
        except OSError as e:
            self.disabled_reason = (
                "cannot create a shared-memory object in %s (%s); set "
                "NPUK_SHM=0 to stop trying" % (SHM_DIR, e))
            return None

    def _done_with(self, region: _Region, reusable: bool) -> None:
        """The request is over: `region` goes back to the pool when the
        daemon is done with it (`reusable`), else it is retired."""
        if not reusable:
            self._retire(region)
        elif not self._pool.release(region):
            self._pool.discard(region)

    def _output(self, request: Any, raws: List[bytes]) -> Optional[str]:
        """The output name, "" when it needs a metadata look-up, None when
        the request must go plain."""
        if not self.active or not _need(request, raws):
            return None
        if request.outputs and request.outputs[0].name:
            return request.outputs[0].name
        names = self._pool.output_names
        if request.model_name in names:  # "": several outputs, goes plain
            return names[request.model_name] or None
        return ""


class ShmTransport(_Counters):
    """Runs ModelInferRequests through registered regions. `stub` is a
    GRPCInferenceServiceStub; thread-safe (one region per request in flight,
    at most MAX_REGIONS)."""

    def __init__(self, stub: Any, timeout: Optional[float]) -> None:
        super().__init__()
        self._stub = stub
        self._timeout = timeout

    def _unregister(self, region: _Region) -> None:
        try:
            self._stub.SystemSharedMemoryUnregister(
                _unregister_request(region), timeout=self._timeout)
        except (grpc.RpcError, ValueError):  # ValueError: channel closed
            pass

    def _retire(self, region: _Region) -> None:
        self._pool.forget(region)
        self._pool.discard(region)
        if not self._pool.closed:  # else close() unregistered it
            self._unregister(region)

    def _acquire(self, need: int) -> Optional[_Region]:
        region, evict, size = self._pool.take(need)
        if region is not None or not size:
            return region
        if evict is not None:
            self._pool.discard(evict)
            self._unregister(evict)
        region = self._create(size)
        if region is None:
            return None
        try:
            self._stub.SystemSharedMemoryRegister(_register_request(region),
                                                  timeout=self._timeout)
        except grpc.RpcError as e:
            self._pool.abandon()
            self._pool.discard(region)
            self.disabled_reason = self.disabled_reason or _refusal(e)
            return None
        except BaseException:
            self._pool.abandon()
            self._pool.discard(region)
            self._unregister(region)
            raise
        if not self._pool.added(region):
            self._pool.discard(region)
            self._unregister(region)
            return None
        return region

    def _output_name(self, model: str) -> str:
        try:
            meta = self._stub.ModelMetadata(
                pb.ModelMetadataRequest(name=model), timeout=self._timeout)
        except grpc.RpcError:
            return ""
        name = meta.outputs[0].name if len(meta.outputs) == 1 else ""
        self._pool.output_names[model] = name
        return name

    def infer(self, request: Any, send: Callable[[Any], Any]) -> Any:
        """The ModelInferResponse for `request` (raw inputs), with its outputs'
        bytes in raw_output_contents as plain gRPC would give them. `send`
        performs the ModelInfer call (raising grpc.RpcError)."""
        raws = _raw_inputs(request)
        output = self._output(request, raws)
        if output == "":
            output = self._output_name(request.model_name)
        region = self._acquire(_need(request, raws)) if output else None
        if region is None:
            self.fallbacks += 1
            return send(request)
        shm_req, out_offset = _shm_request(request, raws, region, output)
        try:
            resp = send(shm_req)
        except grpc.RpcError as e:
            if _is_shm_error(e):
                # The region is gone (unregistered by someone else: forget
                # it) or the request does not fit it: answer this request
                # plainly, which also gives plain gRPC's error text.
                self._done_with(region, not _region_lost(e))
                self.fallbacks += 1
                return send(request)
            self._done_with(region, e.code() in _ANSWERED)
            raise
        except BaseException:
            self._retire(region)
            raise
        _copy_outputs(resp, region, out_offset)
        self._done_with(region, True)
        self.requests += 1
        return resp

    def close(self) -> None:
        """Unregisters every region and removes the objects."""
        free, lent = self._pool.drain()
        for r in free:
            self._pool.discard(r)
        for r in free + lent:
            self._unregister(r)
        self._pool.finalize()


class AsyncShmTransport(_Counters):
    """ShmTransport for grpc.aio: `stub` is a GRPCInferenceServiceStub on a
    grpc.aio channel; use it from one event loop (any number of
    coroutines). Registration is awaited; unregistering runs in tasks the
    transport keeps, so a cancelled request never leaves a region behind
    and close() waits for them all."""

    def __init__(self, stub: Any, timeout: Optional[float]) -> None:
        super().__init__()
        self._stub = stub
        self._timeout = timeout
        self._tasks: Set["asyncio.Task[Any]"] = set()

    def _spawn(self, coro: Awaitable[Any]) -> "asyncio.Task[Any]":
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _unregister(self, region: _Region) -> None:
        try:
            await self._stub.SystemSharedMemoryUnregister(
                _unregister_request(region), timeout=self._timeout)
        except (grpc.RpcError, grpc.aio.UsageError):  # or channel closed
            pass

    def _retire(self, region: _Region) -> None:
        """Out of the pool and off the disk now (no await, so it also runs
        on cancellation); unregistered in the background."""
        self._pool.forget(region)
        self._pool.discard(region)
        if not self._pool.closed:  # else close() unregistered it
            self._spawn(self._unregister(region))

    async def _register(self, region: _Region) -> bool:
        """Registers `region` and lends it to the caller (True). Runs as its
        own task: when the caller is cancelled meanwhile (region.orphaned),
        the registration still completes and then removes the region."""
        try:
            await self._stub.SystemSharedMemoryRegister(
                _register_request(region), timeout=self._timeout)
        except grpc.RpcError as e:
            self._pool.abandon()
            self._pool.discard(region)
            self.disabled_reason = self.disabled_reason or _refusal(e)
            return False
        except BaseException:
            self._pool.abandon()
            self._pool.discard(region)
            await self._unregister(region)
            raise
        if not self._pool.added(region):
            self._pool.discard(region)
            await self._unregister(region)
            return False
        if region.orphaned:
            self._retire(region)
            return False
        return True

    async def _acquire(self, need: int) -> Optional[_Region]:
        region, evict, size = self._pool.take(need)
        if region is not None or not size:
            return region
        if evict is not None:
            self._pool.discard(evict)
            self._spawn(self._unregister(evict))
        region = self._create(size)
        if region is None:
            return None
        task = self._spawn(self._register(region))
        try:
            ok = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and not task.cancelled() and \
                    task.exception() is None and task.result():
                # Registered and lent just before the cancellation arrived.
                if not self._pool.release(region):
                    self._pool.discard(region)
            else:
                region.orphaned = True
            raise
        return region if ok else None

    async def _output_name(self, model: str) -> str:
        try:
            meta = await self._stub.ModelMetadata(
                pb.ModelMetadataRequest(name=model), timeout=self._timeout)
        except grpc.RpcError:
            return ""
        name = meta.outputs[0].name if len(meta.outputs) == 1 else ""
        self._pool.output_names[model] = name
        return name

    async def infer(self, request: Any,
                    send: Callable[[Any], Awaitable[Any]]) -> Any:
        """ShmTransport.infer as a coroutine: `send(request)` returns the
        awaitable ModelInfer call (raising grpc.RpcError)."""
        raws = _raw_inputs(request)
        output = self._output(request, raws)
        if output == "":
            output = await self._output_name(request.model_name)
        region = await self._acquire(_need(request, raws)) if output else None
        if region is None:
            self.fallbacks += 1
            return await send(request)
        try:
            shm_req, out_offset = _shm_request(request, raws, region, output)
            resp = await send(shm_req)
        except grpc.RpcError as e:
            if _is_shm_error(e):
                self._done_with(region, not _region_lost(e))
                self.fallbacks += 1
                return await send(request)
            self._done_with(region, e.code() in _ANSWERED)
            raise
        except BaseException:
            # Cancelled (or worse) while the daemon may still be writing
            # into the region: never lend it again.
            self._retire(region)
            raise
        _copy_outputs(resp, region, out_offset)
        self._done_with(region, True)
        self.requests += 1
        return resp

    async def close(self) -> None:
        """Unregisters every region, removes the objects and waits for the
        unregistrations still running."""
        free, lent = self._pool.drain()
        for r in free:
            self._pool.discard(r)
        for r in free + lent:
            self._spawn(self._unregister(r))
        try:
            while self._tasks:
                await asyncio.gather(*list(self._tasks),
                                     return_exceptions=True)
        finally:
            self._pool.finalize()

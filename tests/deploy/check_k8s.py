"""Static checks of deploy/k8s: the DaemonSet probes the gRPC health port
the container serves, gets the NPU for real (the base through a device
plugin that advertises /dev/accel nodes as the resource it requests, in the
device cgroup and without privileges; privileged/ through a privileged root
container that mounts /dev/accel), and the Service is headless.
Run with /usr/bin/python3 (Debian's python3-yaml)."""
import json
import pathlib
import sys

import yaml

k8s = pathlib.Path(sys.argv[1])


def load(directory):
    docs = {}
    for f in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and "kind" in doc:
                docs.setdefault(doc["kind"], []).append(doc)
    return docs


docs = load(k8s)
errors = []


def daemonset(docs, name):
    for d in docs.get("DaemonSet", []):
        if d["metadata"]["name"] == name:
            return d
    errors.append(f"no DaemonSet {name}")
    return None


def plugin_resources(docs):
    """Resource names the generic device plugin advertises for accel nodes."""
    names = set()
    for d in docs.get("DaemonSet", []):
        for c in d["spec"]["template"]["spec"]["containers"]:
            args = c.get("args", [])
            domain = "squat.ai"
            for a in args:
                if a.startswith("--domain="):
                    domain = a.split("=", 1)[1]
            for a in args:
                if a.startswith("--device="):
                    dev = json.loads(a.split("=", 1)[1])
                    paths = [p["path"] for g in dev["groups"] for p in g.get("paths", [])]
                    if any(p.startswith("/dev/accel/accel") for p in paths):
                        names.add(f"{domain}/{dev['name']}")
    return names


ds = daemonset(docs, "npukd")
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
listen = [a for a in c["args"] if a.startswith("--listen=")]
if not listen or not listen[0].endswith(f":{ports['grpc']}"):
    errors.append(f"--listen {listen} does not serve the grpc port {ports['grpc']}")
for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
    p = c.get(probe, {}).get("grpc")
    if p is None:
        errors.append(f"{probe} must be a gRPC health probe")
    elif p["port"] != ports["grpc"]:
        errors.append(f"{probe} probes port {p['port']}, not {ports['grpc']}")
    elif p.get("service", "") not in ("", "inference.GRPCInferenceService",
                                      "mel", "attention"):
        errors.append(f"{probe} asks for unknown health service {p['service']}")
if c["readinessProbe"]["failureThreshold"] != 1:
    errors.append("readiness must drop a pod on the first NOT_SERVING")
# Device-plugin mode: the NPU node arrives with its device-cgroup rule.
advertised = plugin_resources(docs)
wanted = {k for k in c["resources"].get("limits", {}) if "/" in k}
if not advertised:
    errors.append("no device plugin advertises /dev/accel/accel* nodes")
if not wanted & advertised:
    errors.append(f"npukd requests {sorted(wanted)}, the plugin offers {sorted(advertised)}")
sc = c.get("securityContext", {})
if sc.get("privileged") or sc.get("capabilities", {}).get("drop") != ["ALL"]:
    errors.append("with the device plugin npukd needs no privileges: drop ALL")
if not pod.get("securityContext", {}).get("runAsNonRoot"):
    errors.append("with the device plugin npukd runs as non-root")
if any(v.get("hostPath", {}).get("path", "").startswith("/dev/accel")
       for v in pod.get("volumes", [])):
    errors.append("a hostPath /dev/accel is outside the device cgroup: use the plugin")
plugin = daemonset(docs, "npu-device-plugin")
if plugin and plugin["spec"]["template"]["spec"].get("nodeSelector") != pod.get("nodeSelector"):
    errors.append("the device plugin must run on the nodes npukd selects")

# Privileged mode: the device cgroup allows all, root keeps CAP_IPC_LOCK.
priv = load(k8s / "privileged")
pds = daemonset(priv, "npukd")
if pds:
    ppod = pds["spec"]["template"]["spec"]
    pc = ppod["containers"][0]
    psc = pc.get("securityContext", {})
    if not psc.get("privileged") or psc.get("runAsUser") != 0:
        errors.append("privileged/ must run npukd privileged as uid 0 (CAP_IPC_LOCK)")
    mounts = {m["name"]: m["mountPath"] for m in pc.get("volumeMounts", [])}
    vols = {v["name"]: v for v in ppod.get("volumes", [])}
    if mounts.get("accel") != "/dev/accel" or vols.get("accel", {}).get("hostPath", {}).get("path") != "/dev/accel":
        errors.append("privileged/ must mount /dev/accel from the host")
    if pds["spec"]["selector"] != ds["spec"]["selector"]:
        errors.append("privileged/ pods must match the base Service's selector")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if pc.get(probe) != c.get(probe):
            errors.append(f"privileged/ {probe} differs from the base")

if not pod.get("nodeSelector"):
    errors.append("the DaemonSet must select NPU nodes")
svc = docs["Service"][0]
if svc["spec"].get("clusterIP") != "None":
    errors.append("the Service must be headless (clusterIP: None)")
if svc["spec"]["selector"] != ds["spec"]["selector"]["matchLabels"]:
    errors.append("the Service does not select the DaemonSet's pods")

for e in errors:
    print("FAIL:", e)
print(f"k8s manifests: {sum(len(v) for v in docs.values())} objects "
      f"(+{sum(len(v) for v in priv.values())} privileged), "
      f"{len(errors)} problems")
sys.exit(1 if errors else 0)

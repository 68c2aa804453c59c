"""Static checks of deploy/k8s: the DaemonSet probes the gRPC health port
the container serves, mounts /dev/accel, and the Service is headless.
Run with /usr/bin/python3 (Debian's python3-yaml)."""
import pathlib
import sys

import yaml

k8s = pathlib.Path(sys.argv[1])
docs = {}
for f in sorted(k8s.glob("*.yaml")):
    for doc in yaml.safe_load_all(f.read_text()):
        if doc and "kind" in doc:
            docs.setdefault(doc["kind"], []).append(doc)

errors = []
ds = docs["DaemonSet"][0]
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
    elif p.get("service", "") not in ("", "mel", "attention"):
        errors.append(f"{probe} asks for unknown health service {p['service']}")
if c["readinessProbe"]["failureThreshold"] != 1:
    errors.append("readiness must drop a pod on the first NOT_SERVING")
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
if mounts.get("accel") != "/dev/accel" or vols["accel"]["hostPath"]["path"] != "/dev/accel":
    errors.append("/dev/accel must be mounted from the host")
if not pod.get("nodeSelector"):
    errors.append("the DaemonSet must select NPU nodes")
svc = docs["Service"][0]
if svc["spec"].get("clusterIP") != "None":
    errors.append("the Service must be headless (clusterIP: None)")
if svc["spec"]["selector"] != ds["spec"]["selector"]["matchLabels"]:
    errors.append("the Service does not select the DaemonSet's pods")

for e in errors:
    print("FAIL:", e)
print(f"k8s manifests: {sum(len(v) for v in docs.values())} objects, "
      f"{len(errors)} problems")
sys.exit(1 if errors else 0)

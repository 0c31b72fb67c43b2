#!/usr/bin/python3
"""The server started exactly as the rendered StatefulSet says, on a rules
directory laid out as the kubelet lays out a ConfigMap volume (the ConfigMap
scripts/rules-configmap.sh makes), then updated the way the kubelet updates
it, under load from the project's load generator.

From the StatefulSet's command, args and environment only the binary path,
the two ports (to free ones) and the mounts (to directories of the test:
the ConfigMap volume, an empty directory for the replica's claim, one for
the signing-key Secret) are replaced; everything else — plaintext, drain,
reload interval, where the audit log, its checkpoints and the rule archive
go, the log's origin from the pod's name — is as deployed. Twice: dev as
shipped (the audit log on the replica's volume), and dev with
components/audit-stdout (on stdout).

usage: deployment_run_test.py --server BIN --cli BIN --source DIR
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

ARGS = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConfigMapVolume:
    """A directory as the kubelet mounts a ConfigMap: each file a symlink to
    ..data/FILE, ..data a symlink to a timestamped directory; an update
    writes a new timestamped directory, swaps ..data atomically (rename of
    a new symlink over it) and deletes the old directory."""

    def __init__(self, path, files):
        self.path = path
        self.generation = 0
        os.makedirs(path)
        self.update(files)

    def update(self, files):
        self.generation += 1
        new = os.path.join(self.path, f"..2026_11_25_00_00_{self.generation:02d}.{os.getpid()}")
        os.makedirs(new)
        for name, text in files.items():
            with open(os.path.join(new, name), "w") as out:
                out.write(text)
        old = os.path.realpath(os.path.join(self.path, "..data")) \
            if os.path.islink(os.path.join(self.path, "..data")) else None
        os.symlink(os.path.basename(new), os.path.join(self.path, "..data_tmp"))
        os.rename(os.path.join(self.path, "..data_tmp"), os.path.join(self.path, "..data"))
        for name in files:
            link = os.path.join(self.path, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)
        for name in os.listdir(self.path):
            link = os.path.join(self.path, name)
            if not name.startswith("..") and name not in files:
                os.unlink(link)
        if old:
            shutil.rmtree(old)


# The flags of the audit volume (the server's log, checkpoints and rule
# archive on the replica's own volume): a server built before them is run
# with the stdout variant only.
AUDIT_VOLUME_FLAGS = {"audit-log-origin", "audit-signing-key", "rules-archive"}
POD = {"name": "trialrules-0", "namespace": "trialrules-dev"}


def render_statefulset(directory):
    rendered = subprocess.run(["kubectl", "kustomize", directory],
                              capture_output=True, text=True, check=True, timeout=120).stdout
    return next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "StatefulSet")


def audit_stdout_overlay(work):
    """dev with components/audit-stdout, as the component says to use it."""
    os.makedirs(work)
    with open(os.path.join(work, "kustomization.yaml"), "w") as f:
        f.write(f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: trialrules-dev
resources:
  - {os.path.relpath(os.path.join(ARGS.source, "k8s/overlays/dev"), work)}
components:
  - {os.path.relpath(os.path.join(ARGS.source, "k8s/components/audit-stdout"), work)}
""")
    return work


def resolve_env(container, pod):
    """The container's environment as the kubelet gives it to POD: downward
    API fields filled in, $(VAR) replaced by a variable defined before."""
    out = {}
    for var in container.get("env", []):
        if "valueFrom" in var:
            out[var["name"]] = pod[var["valueFrom"]["fieldRef"]["fieldPath"].split(".", 1)[1]]
        else:
            out[var["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                      lambda m: out.get(m.group(1), m.group(0)),
                                      var.get("value", ""))
    return out


def server_flags():
    help_text = subprocess.run([ARGS.server, "--help"], capture_output=True, text=True,
                               timeout=30).stderr
    return set(re.findall(r"^  --([a-z-]+) ", help_text, re.M))


def records(paths):
    out = []
    for path in paths:
        with open(path) as lines:
            out += [json.loads(line) for line in lines if line.startswith("{")]
    return out


class DeploymentRunTest(unittest.TestCase):
    def test_configmap_update_with_the_audit_log_on_the_replica_volume(self):
        if not AUDIT_VOLUME_FLAGS & server_flags():
            self.skipTest(f"{ARGS.server} predates the audit volume "
                          f"({', '.join(sorted(AUDIT_VOLUME_FLAGS))})")
        run = self.run_as_deployed(os.path.join(ARGS.source, "k8s/overlays/dev"),
                                   signing_key=True)
        settings = run["env"]
        # Nothing on stdout: the records are on the volume, in the log and
        # the files rotated from it (none at this size, but read them too).
        self.assertEqual(records([run["stdout"]]), [])
        log = settings["TRIALRULES_AUDIT_LOG"]
        self.assertTrue(log.startswith(run["claim"] + "/"), log)
        rotated = sorted(os.path.join(os.path.dirname(log), f)
                         for f in os.listdir(os.path.dirname(log))
                         if re.fullmatch(re.escape(os.path.basename(log)) + r"\.[0-9]{20}", f))
        audit = records(rotated + [log])
        self.assertTrue(any(r.get("record", {}).get("version") == "3.0" for r in audit))
        self.assertGreater(len(audit), 100)
        # Its checkpoints beside it (the default), naming this replica.
        origin = settings["TRIALRULES_AUDIT_LOG_ORIGIN"]
        self.assertTrue(origin.endswith(f"/{POD['namespace']}/{POD['name']}"), origin)
        with open(settings.get("TRIALRULES_AUDIT_CHECKPOINTS", log + ".checkpoints")) as f:
            self.assertIn(origin, f.read())
        # Every protocol version it loaded, the amendment included, in the
        # archive on the volume, whatever the archive names them.
        archive = settings["TRIALRULES_RULES_ARCHIVE"]
        self.assertTrue(archive.startswith(run["claim"] + "/"), archive)
        archived = set()
        for directory, _, files in os.walk(archive):
            for name in files:
                with open(os.path.join(directory, name), "rb") as f:
                    archived.add(f.read())
        for name, text in run["rules"].items():
            if re.search(r"-v[0-9.]+\.textproto$", name):
                self.assertTrue(text.encode() in archived, f"{name} is not in {archive}")

    def test_configmap_update_with_the_audit_log_on_stdout(self):
        work = tempfile.mkdtemp(prefix="trialrules-overlay-")
        self.addCleanup(shutil.rmtree, work, ignore_errors=True)
        run = self.run_as_deployed(audit_stdout_overlay(os.path.join(work, "dev-audit-stdout")),
                                   signing_key=False)
        self.assertEqual(run["env"]["TRIALRULES_AUDIT_LOG"], "-")
        self.assertIsNone(run["claim"])
        audit = records([run["stdout"]])
        self.assertTrue(any(r.get("record", {}).get("version") == "3.0" for r in audit))
        self.assertGreater(len(audit), 100)

    def run_as_deployed(self, overlay, signing_key):
        """Runs the StatefulSet's server as pod trialrules-0 of OVERLAY while
        its rules are updated under load; the signing key Secret present or
        not (it is optional). Returns its environment (paths as the test
        mounts them), where the claim is mounted (None without one), the
        final rule files and the paths of its stdout."""
        statefulset = render_statefulset(overlay)
        pod = statefulset["spec"]["template"]["spec"]
        container = pod["containers"][0]
        claims = {c["metadata"]["name"] for c in statefulset["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in pod["volumes"]}

        work = tempfile.mkdtemp(prefix="trialrules-deployment-")
        self.addCleanup(shutil.rmtree, work, ignore_errors=True)
        config_map = yaml.safe_load(subprocess.run(
            ["bash", os.path.join(ARGS.source, "scripts/rules-configmap.sh"), "--print", "dev"],
            capture_output=True, text=True, check=True, timeout=120).stdout)
        files = config_map["data"]

        # Every mount of the container, on a directory of the test.
        mounts = {}
        claim = rules = None
        for mount in container["volumeMounts"]:
            name, path = mount["name"], mount["mountPath"]
            local = os.path.join(work, "volumes", name)
            if name in claims:
                os.makedirs(local)          # a new claim: empty
                claim = local
            elif "configMap" in volumes[name]:
                self.assertEqual(config_map["metadata"]["name"],
                                 volumes[name]["configMap"]["name"])
                volume = ConfigMapVolume(local, files)
                rules = path
            elif "secret" in volumes[name]:
                # The optional signing-key Secret: made the way k8s/README.md
                # says, or absent (an empty directory).
                self.assertTrue(volumes[name]["secret"]["optional"])
                os.makedirs(local)
                if signing_key:
                    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519",
                                    "-out", "ed25519.pem"], cwd=local, check=True,
                                   capture_output=True, timeout=30)
            elif "emptyDir" in volumes[name]:
                os.makedirs(local)
            else:
                self.fail(f"a mount the test does not lay out: {mount}")
            mounts[path] = local

        def local_path(value):
            for path, local in mounts.items():
                if value == path or value.startswith(path + "/"):
                    return local + value[len(path):]
            return value

        grpc_port, metrics_port = free_port(), free_port()
        replaced = []
        args = []
        for arg in container["args"]:
            name, equals, value = arg.partition("=")
            if name == "--listen":
                arg = f"--listen=127.0.0.1:{grpc_port}"
            elif name == "--metrics-address":
                arg = f"--metrics-address=127.0.0.1:{metrics_port}"
            elif name == "--rules-dir":
                self.assertEqual(value, rules)
                arg = f"--rules-dir={local_path(value)}"
            else:
                self.assertEqual(local_path(value), value, arg)
                args.append(arg)
                continue
            replaced.append(name)
            args.append(arg)
        self.assertEqual(sorted(replaced), ["--listen", "--metrics-address", "--rules-dir"])
        self.assertEqual(container["command"], ["/usr/local/bin/trialrules-server"])
        pod_env = {name: local_path(value)
                   for name, value in resolve_env(container, POD).items()}
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRIALRULES_")},
               **pod_env}

        # The working directory stands for the read-only root: nothing may
        # be written there.
        cwd = os.path.join(work, "root")
        os.makedirs(cwd)
        stdout = open(os.path.join(work, "stdout"), "w")
        stderr = open(os.path.join(work, "stderr"), "w")
        server = subprocess.Popen([ARGS.server, *args], stdout=stdout, stderr=stderr,
                                  env=env, cwd=cwd)
        def stop():
            if server.poll() is None:
                server.kill()
                server.wait()
            stdout.close()
            stderr.close()
        self.addCleanup(stop)
        def log():
            with open(stderr.name) as text:
                return text.read()
        target = f"127.0.0.1:{grpc_port}"
        facts = os.path.join(ARGS.source, "tests/data/facts/eligible_patient.json")
        rules_source = os.path.join(ARGS.source, "rules")

        def eval_json(*extra):
            result = subprocess.run(
                [ARGS.cli, "eval", "--server", target, "--protocol", "NCT04094766",
                 "--facts", facts, "--json", *extra],
                capture_output=True, text=True, timeout=30)
            return result.returncode, result.stdout + result.stderr

        deadline = time.monotonic() + 20
        while eval_json()[0] != 0:
            self.assertIsNone(server.poll(), log())
            self.assertLess(time.monotonic(), deadline, "the server did not answer\n" + log())
            time.sleep(0.1)

        # Load for 8 s while the kubelet-style update lands: an amendment
        # 3.0 is added and v1.0's file stays.
        load = subprocess.Popen(
            [ARGS.cli, "bench", "--server", target, "--seconds", "8", "--in-flight", "4",
             "--channels", "2", "--rules", rules_source],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(2)
        amendment = files["NCT04094766-v2.0.textproto"]
        amendment = amendment.replace('version: "2.0"', 'version: "3.0"', 1)
        amendment = amendment.replace('effective_from: "2020-06-01"',
                                      'effective_from: "2021-01-01"', 1)
        files = {**files, "NCT04094766-v3.0.textproto": amendment}
        volume.update(files)

        deadline = time.monotonic() + 20
        while True:
            code, output = eval_json("--version", "3.0")
            if code == 0:
                break
            self.assertLess(time.monotonic(), deadline, output)
            time.sleep(0.2)
        self.assertEqual(json.loads(output)["rule_set"]["version"], "3.0")

        bench_output, _ = load.communicate(timeout=60)
        result = re.search(r"^RESULT .* per_second=(\d+) .* errors=(\d+)$", bench_output, re.M)
        self.assertIsNotNone(result, bench_output)
        self.assertGreater(int(result.group(1)), 0)
        self.assertEqual(int(result.group(2)), 0, bench_output)
        self.assertEqual(load.returncode, 0, bench_output)

        # The same process throughout, drained on SIGTERM.
        self.assertIsNone(server.poll())
        server.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(timeout=30), 0, log())
        stdout.flush()
        self.assertIn("rules: loaded NCT04094766 version 3.0", log())
        self.assertEqual(os.listdir(cwd), [])
        return {"env": pod_env, "claim": claim, "rules": files, "stdout": stdout.name}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--source", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

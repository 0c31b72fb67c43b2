#!/usr/bin/python3
"""The server started exactly as the rendered Deployment says, on a rules
directory laid out as the kubelet lays out a ConfigMap volume (the ConfigMap
scripts/rules-configmap.sh makes), then updated the way the kubelet updates
it, under load from the project's load generator.

From the Deployment's command and args only the binary path, the rules
mount, and the two ports (to free ones) are replaced; everything else —
plaintext, audit log on stdout, drain, reload interval — is as deployed.

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


class DeploymentRunTest(unittest.TestCase):
    def test_configmap_update_is_served_without_restart_or_failed_call(self):
        rendered = subprocess.run(
            ["kubectl", "kustomize", os.path.join(ARGS.source, "k8s/overlays/dev")],
            capture_output=True, text=True, check=True, timeout=120).stdout
        deployment = next(d for d in yaml.safe_load_all(rendered)
                          if d and d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "rules")

        work = tempfile.mkdtemp(prefix="trialrules-deployment-")
        self.addCleanup(shutil.rmtree, work, ignore_errors=True)
        rules_source = os.path.join(ARGS.source, "rules")
        config_map = yaml.safe_load(subprocess.run(
            ["bash", os.path.join(ARGS.source, "scripts/rules-configmap.sh"), "--print", "dev"],
            capture_output=True, text=True, check=True, timeout=120).stdout)
        volume_source = next(v["configMap"] for v in deployment["spec"]["template"]["spec"]
                             ["volumes"] if v["name"] == "rules")
        self.assertEqual(config_map["metadata"]["name"], volume_source["name"])
        files = config_map["data"]
        volume = ConfigMapVolume(os.path.join(work, "rules"), files)

        grpc_port, metrics_port = free_port(), free_port()
        replaced = []
        args = []
        for arg in container["args"]:
            name = arg.partition("=")[0]
            if name == "--listen":
                arg = f"--listen=127.0.0.1:{grpc_port}"
            elif name == "--metrics-address":
                arg = f"--metrics-address=127.0.0.1:{metrics_port}"
            elif name == "--rules-dir":
                self.assertEqual(arg, f"--rules-dir={mount}")
                arg = f"--rules-dir={volume.path}"
            else:
                args.append(arg)
                continue
            replaced.append(name)
            args.append(arg)
        self.assertEqual(sorted(replaced), ["--listen", "--metrics-address", "--rules-dir"])
        self.assertEqual(container["command"], ["/usr/local/bin/trialrules-server"])
        self.assertIn("--audit-log=-", args)

        stdout = open(os.path.join(work, "stdout"), "w")
        stderr = open(os.path.join(work, "stderr"), "w")
        server = subprocess.Popen([ARGS.server, *args], stdout=stdout, stderr=stderr)
        def stop():
            if server.poll() is None:
                server.kill()
                server.wait()
            stdout.close()
            stderr.close()
        self.addCleanup(stop)
        target = f"127.0.0.1:{grpc_port}"
        facts = os.path.join(ARGS.source, "tests/data/facts/eligible_patient.json")

        def eval_json(*extra):
            result = subprocess.run(
                [ARGS.cli, "eval", "--server", target, "--protocol", "NCT04094766",
                 "--facts", facts, "--json", *extra],
                capture_output=True, text=True, timeout=30)
            return result.returncode, result.stdout + result.stderr

        deadline = time.monotonic() + 20
        while eval_json()[0] != 0:
            self.assertLess(time.monotonic(), deadline, "the server did not answer")
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
        volume.update({**files, "NCT04094766-v3.0.textproto": amendment})

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

        # The same process throughout, its decisions audited on stdout.
        self.assertIsNone(server.poll())
        server.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(timeout=30), 0)
        stdout.flush()
        with open(stderr.name) as text:
            log = text.read()
        self.assertIn("rules: loaded NCT04094766 version 3.0", log)
        with open(stdout.name) as lines:
            audit = [json.loads(line) for line in lines if line.startswith("{")]
        self.assertTrue(any(r.get("version") == "3.0" for r in audit))
        self.assertGreater(len(audit), 100)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--source", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

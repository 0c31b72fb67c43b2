#!/usr/bin/python3
"""The Kubernetes manifests, as a user deploys every overlay: the rules
ConfigMap from scripts/rules-configmap.sh, everything else from plain
`kubectl kustomize` (what `kubectl apply -k` applies, with kustomize's
default load restrictor).

No cluster here: the objects are checked against what the server and the
repository say — probes on the ports the server's flags open, the security
context, the rules volume (a whole ConfigMap directory, never subPath)
holding every file of rules/, selectors that match the pod labels,
Services, HPA, PDB, NetworkPolicy, ServiceMonitor and PrometheusRule; and
the script's ConfigMap: name, namespace and labels as the overlay's
objects have them, applied server-side.

usage: manifests_test.py --source DIR --server BIN
"""
import argparse
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import yaml

ARGS = None
OVERLAYS = ["dev", "prod"]
RULES_CONFIGMAP = "trialrules-rules"


def render(overlay):
    """`kubectl kustomize k8s/overlays/OVERLAY` exactly as a user runs it (and
    as `kubectl apply -k` renders): no --load-restrictor, so a kustomization
    that reads files outside its own directory fails here."""
    result = subprocess.run(
        ["kubectl", "kustomize", os.path.join(ARGS.source, "k8s", "overlays", overlay)],
        capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay}: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def script():
    return os.path.join(ARGS.source, "scripts", "rules-configmap.sh")


def rules_configmap(overlay, *options, env=None):
    """scripts/rules-configmap.sh --print OVERLAY: the objects it would apply."""
    result = subprocess.run(["bash", script(), "--print", *options, overlay],
                            capture_output=True, text=True, timeout=120, env=env)
    if result.returncode != 0:
        raise AssertionError(f"rules-configmap.sh --print {overlay}: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def rule_files(directory):
    """Every file of a flat rules folder: what the ConfigMap must hold."""
    return sorted(f for f in os.listdir(directory)
                  if os.path.isfile(os.path.join(directory, f)))


def flags(args):
    """--name=value arguments as a dict; --name alone as "true"."""
    out = {}
    for arg in args:
        assert arg.startswith("--"), arg
        name, _, value = arg[2:].partition("=")
        out[name] = value if "=" in arg else "true"
    return out


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # kustomize's objects alone, and everything a deployment applies:
        # those plus the script's ConfigMap.
        cls.kustomized = {overlay: render(overlay) for overlay in OVERLAYS}
        cls.rendered = {overlay: cls.kustomized[overlay] + rules_configmap(overlay)
                        for overlay in OVERLAYS}

    def objects(self, overlay, kind):
        return [o for o in self.rendered[overlay] if o["kind"] == kind]

    def one(self, overlay, kind, name=None):
        found = [o for o in self.objects(overlay, kind)
                 if name is None or o["metadata"]["name"] == name]
        self.assertEqual(len(found), 1, f"{overlay}: {kind} {name}")
        return found[0]

    def deployment(self, overlay):
        deployment = self.one(overlay, "Deployment", "trialrules")
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        return deployment, pod, container, flags(container["args"])

    def test_every_overlay_renders_the_same_kinds(self):
        wanted = {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler",
                  "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"}
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                kinds = {o["kind"] for o in self.rendered[overlay]}
                self.assertEqual(kinds, wanted)
                namespaces = {o["metadata"].get("namespace") for o in self.rendered[overlay]}
                self.assertEqual(len(namespaces), 1, namespaces)
                self.assertNotIn(None, namespaces)
                # The rules ConfigMap has a single owner, the script: were
                # kustomize to render it too, `kubectl apply -k` would put
                # back whatever rules the checkout it runs from has.
                self.assertNotIn("ConfigMap", {o["kind"] for o in self.kustomized[overlay]})

    def test_probes_use_native_grpc_on_the_ports_the_flags_open(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                _, _, container, args = self.deployment(overlay)
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                self.assertEqual(ports["grpc"], port_of(args["listen"]))
                self.assertEqual(ports["metrics"], port_of(args["metrics-address"]))
                # With mutual TLS the kubelet (no client certificate) probes
                # the plaintext health-only port.
                probe_port = (port_of(args["health-listen"]) if "tls-client-ca" in args
                              else ports["grpc"])
                if "health-listen" in args:
                    self.assertEqual(ports["health"], port_of(args["health-listen"]))
                ready = container["readinessProbe"]["grpc"]
                alive = container["livenessProbe"]["grpc"]
                self.assertEqual(ready["port"], probe_port)
                self.assertEqual(alive["port"], probe_port)
                self.assertEqual(ready.get("service", ""), "")
                self.assertEqual(alive["service"], "liveness")
                self.assertNotIn("httpGet", container["readinessProbe"])

    def test_tls_is_explicit_plaintext_or_mutual(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                _, pod, container, args = self.deployment(overlay)
                self.assertNotEqual("plaintext" in args, "tls-cert" in args)
        _, pod, container, args = self.deployment("prod")
        self.assertIn("tls-client-ca", args)
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["tls"]["secret"]["secretName"], "trialrules-tls")
        for flag, key in [("tls-cert", "tls.crt"), ("tls-key", "tls.key"),
                          ("tls-client-ca", "ca.crt")]:
            self.assertEqual(args[flag], mounts["tls"]["mountPath"] + "/" + key)
        self.assertNotIn("subPath", mounts["tls"])

    def test_security_context_and_resources(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                deployment, pod, container, args = self.deployment(overlay)
                self.assertGreaterEqual(deployment["spec"]["replicas"], 2)
                security = pod["securityContext"]
                self.assertTrue(security["runAsNonRoot"])
                self.assertGreater(security["runAsUser"], 0)
                self.assertEqual(security["seccompProfile"]["type"], "RuntimeDefault")
                own = container["securityContext"]
                self.assertFalse(own["allowPrivilegeEscalation"])
                self.assertTrue(own["readOnlyRootFilesystem"])
                self.assertEqual(own["capabilities"]["drop"], ["ALL"])
                for kind in ("requests", "limits"):
                    self.assertIn("cpu", container["resources"][kind])
                    self.assertIn("memory", container["resources"][kind])
                self.assertGreater(pod["terminationGracePeriodSeconds"],
                                   int(args["drain-seconds"]))
                self.assertEqual(container["command"], ["/usr/local/bin/trialrules-server"])

    def test_rules_volume_is_the_whole_configmap_holding_every_rule_file(self):
        rules_dir = os.path.join(ARGS.source, "rules")
        files = rule_files(rules_dir)
        self.assertTrue(any(f.endswith(".textproto") for f in files), files)
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                _, pod, container, args = self.deployment(overlay)
                mount = [m for m in container["volumeMounts"] if m["name"] == "rules"][0]
                self.assertNotIn("subPath", mount)
                self.assertNotIn("subPathExpr", mount)
                self.assertTrue(mount["readOnly"])
                self.assertEqual(mount["mountPath"], args["rules-dir"])
                volume = [v for v in pod["volumes"] if v["name"] == "rules"][0]
                config_map = self.one(overlay, "ConfigMap", volume["configMap"]["name"])
                self.assertEqual(sorted(config_map["data"]), files)
                for name in files:
                    with open(os.path.join(rules_dir, name)) as f:
                        self.assertEqual(config_map["data"][name], f.read(), name)
                self.assertNotIn("items", volume["configMap"])
                self.assertNotIn("binaryData", config_map)
                # Required: without the ConfigMap a pod waits for it instead
                # of starting without rules, and deleting it does not empty
                # the running pods' directories.
                self.assertFalse(volume["configMap"].get("optional", False))

    def test_rules_configmap_script_makes_the_mounted_configmap_in_the_overlay_namespace(self):
        rules_dir = os.path.join(ARGS.source, "rules")
        files = rule_files(rules_dir)
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                printed = rules_configmap(overlay)
                self.assertEqual(len(printed), 1, printed)
                config_map = printed[0]
                self.assertEqual((config_map["apiVersion"], config_map["kind"]),
                                 ("v1", "ConfigMap"))
                deployment, pod, _, _ = self.deployment(overlay)
                volume = [v for v in pod["volumes"] if v["name"] == "rules"][0]
                # The name the Deployment mounts, without a content hash.
                self.assertEqual(config_map["metadata"]["name"], volume["configMap"]["name"])
                self.assertEqual(config_map["metadata"]["name"], RULES_CONFIGMAP)
                self.assertEqual(config_map["metadata"]["namespace"],
                                 deployment["metadata"]["namespace"])
                # The labels the base puts on every object it renders.
                common = None
                for o in self.kustomized[overlay]:
                    labels = set(o["metadata"].get("labels", {}).items())
                    common = labels if common is None else common & labels
                self.assertTrue(common)
                self.assertEqual(set(config_map["metadata"]["labels"].items()), common)
                self.assertEqual(sorted(config_map["data"]), files)
                for name in files:
                    with open(os.path.join(rules_dir, name)) as f:
                        self.assertEqual(config_map["data"][name], f.read(), name)

    def test_rules_configmap_script_takes_every_file_of_the_rules_folder(self):
        # An amendment is a new file in rules/ and nothing else: the script
        # takes it, and drops a file that is gone.
        work = tempfile.mkdtemp(prefix="trialrules-rules-")
        self.addCleanup(shutil.rmtree, work)
        rules = os.path.join(work, "rules")
        shutil.copytree(os.path.join(ARGS.source, "rules"), rules)
        files = rule_files(rules)
        amendment = "NCT04094766-v9.9.textproto"
        with open(os.path.join(rules, amendment), "w") as f:
            f.write('protocol_id: "NCT04094766"\nversion: "9.9"\n')
        os.unlink(os.path.join(rules, files[0]))
        config_map, = rules_configmap("dev", "--rules", rules)
        self.assertEqual(sorted(config_map["data"]), sorted(files[1:] + [amendment]))
        self.assertEqual(config_map["data"][amendment],
                         'protocol_id: "NCT04094766"\nversion: "9.9"\n')
        self.assertEqual(config_map["metadata"]["namespace"], "trialrules-dev")

    def fake_kubectl(self):
        """A kubectl that records what `kubectl apply` is given (arguments,
        standard input) and runs every other command with the real one."""
        real = shutil.which("kubectl")
        self.assertIsNotNone(real)
        work = tempfile.mkdtemp(prefix="trialrules-kubectl-")
        self.addCleanup(shutil.rmtree, work)
        fake = os.path.join(work, "kubectl")
        with open(fake, "w") as f:
            f.write(f"""#!/usr/bin/env bash
if [ "$1" = apply ]; then
  printf '%s\\n' "$@" > {shlex.quote(work)}/apply.args
  cat > {shlex.quote(work)}/apply.stdin
  exit 0
fi
exec {shlex.quote(real)} "$@"
""")
        os.chmod(fake, os.stat(fake).st_mode | stat.S_IXUSR)
        return fake, os.path.join(work, "apply.args"), os.path.join(work, "apply.stdin")

    def test_rules_configmap_script_applies_server_side_what_it_prints(self):
        fake, args_file, stdin_file = self.fake_kubectl()
        env = {**os.environ, "KUBECTL": fake}
        result = subprocess.run(["bash", script(), "prod", "--context=example"],
                                capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(args_file) as f:
            args = f.read().splitlines()
        self.assertEqual(args[0], "apply")
        # Server-side: the content is not copied into the 256 KiB
        # last-applied annotation, and keys of removed files are removed.
        self.assertIn("--server-side", args)
        self.assertIn("--field-manager=trialrules-rules", args)
        self.assertEqual(args[args.index("-f") + 1], "-")
        self.assertEqual(args[-1], "--context=example")
        with open(stdin_file) as f:
            applied = [doc for doc in yaml.safe_load_all(f) if doc]
        self.assertEqual(applied, rules_configmap("prod"))

    def test_rules_configmap_script_refuses_an_unknown_overlay(self):
        fake, args_file, _ = self.fake_kubectl()
        env = {**os.environ, "KUBECTL": fake}
        for argv in (["staging"], ["--print"], ["--no-such-option", "prod"],
                     ["--rules", os.path.join(ARGS.source, "no-such-dir"), "prod"]):
            with self.subTest(argv=argv):
                result = subprocess.run(["bash", script(), *argv],
                                        capture_output=True, text=True, timeout=60, env=env)
                self.assertNotEqual(result.returncode, 0)
                self.assertEqual(result.stdout, "")
                self.assertFalse(os.path.exists(args_file))

    def test_selectors_match_the_pod_labels(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                deployment, pod, container, _ = self.deployment(overlay)
                labels = deployment["spec"]["template"]["metadata"]["labels"]
                self.assertTrue(matches(deployment["spec"]["selector"]["matchLabels"], labels))
                container_ports = {p["name"] for p in container["ports"]}
                services = {s["metadata"]["name"]: s for s in self.objects(overlay, "Service")}
                self.assertEqual(set(services), {"trialrules", "trialrules-headless"})
                for service in services.values():
                    self.assertTrue(matches(service["spec"]["selector"], labels))
                    for port in service["spec"]["ports"]:
                        self.assertIn(port["targetPort"], container_ports)
                self.assertEqual(services["trialrules-headless"]["spec"]["clusterIP"], "None")
                self.assertEqual({p["name"] for p in services["trialrules"]["spec"]["ports"]},
                                 {"grpc", "metrics"})
                pdb = self.one(overlay, "PodDisruptionBudget")
                self.assertTrue(matches(pdb["spec"]["selector"]["matchLabels"], labels))
                self.assertLess(pdb["spec"]["minAvailable"], deployment["spec"]["replicas"])
                hpa = self.one(overlay, "HorizontalPodAutoscaler")
                self.assertEqual(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment")
                self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "trialrules")
                self.assertGreaterEqual(hpa["spec"]["minReplicas"], 2)
                monitor = self.one(overlay, "ServiceMonitor")
                monitored = [s for s in services.values()
                             if matches(monitor["spec"]["selector"]["matchLabels"],
                                        s["metadata"]["labels"])
                             and any(p["name"] == monitor["spec"]["endpoints"][0]["port"]
                                     for p in s["spec"]["ports"])]
                self.assertEqual([s["metadata"]["name"] for s in monitored], ["trialrules"])

    def test_network_policy_opens_grpc_to_callers_and_metrics_to_prometheus_only(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                deployment, _, _, _ = self.deployment(overlay)
                labels = deployment["spec"]["template"]["metadata"]["labels"]
                policy = self.one(overlay, "NetworkPolicy")
                self.assertTrue(matches(policy["spec"]["podSelector"]["matchLabels"], labels))
                self.assertEqual(policy["spec"]["policyTypes"], ["Ingress"])
                rules = {tuple(p["port"] for p in rule["ports"]): rule["from"]
                         for rule in policy["spec"]["ingress"]}
                self.assertEqual(set(rules), {("grpc",), ("metrics",)})
                prometheus = rules[("metrics",)][0]
                self.assertEqual(prometheus["podSelector"]["matchLabels"],
                                 {"app.kubernetes.io/name": "prometheus"})
                callers = rules[("grpc",)][0]
                self.assertEqual(callers["podSelector"]["matchLabels"],
                                 {"trialrules.io/client": "true"})

    def test_every_argument_is_a_flag_the_server_knows(self):
        help_text = subprocess.run([ARGS.server, "--help"], capture_output=True, text=True,
                                   timeout=30).stderr
        known = set(re.findall(r"^  --([a-z-]+) ", help_text, re.M))
        self.assertIn("listen", known)
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                _, _, _, args = self.deployment(overlay)
                self.assertEqual(set(args) - known, set())

    def test_prometheus_rule_is_the_tested_alert_file(self):
        with open(os.path.join(ARGS.source, "k8s/monitoring/alerts.rules.yaml")) as f:
            alerts = yaml.safe_load(f)
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                rule = self.one(overlay, "PrometheusRule")
                self.assertEqual(rule["spec"], alerts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--server", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

#!/usr/bin/python3
"""The Kubernetes manifests, as kubectl kustomize renders every overlay.

No cluster here: the rendered objects are checked against what the server
and the repository say — probes on the ports the server's flags open, the
security context, the rules volume (a whole ConfigMap directory, never
subPath) holding every file of rules/, selectors that match the pod labels,
Services, HPA, PDB, NetworkPolicy, ServiceMonitor and PrometheusRule.

usage: manifests_test.py --source DIR
"""
import argparse
import os
import re
import subprocess
import sys
import unittest

import yaml

ARGS = None
OVERLAYS = ["dev", "prod"]


def render(overlay):
    result = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor=LoadRestrictionsNone",
         os.path.join(ARGS.source, "k8s", "overlays", overlay)],
        capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay}: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


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
        cls.rendered = {overlay: render(overlay) for overlay in OVERLAYS}

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
        files = sorted(f for f in os.listdir(rules_dir) if f.endswith(".textproto"))
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

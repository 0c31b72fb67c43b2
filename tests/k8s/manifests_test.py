#!/usr/bin/python3
"""The Kubernetes manifests, as a user deploys every overlay: the rules
ConfigMap from scripts/rules-configmap.sh, everything else from plain
`kubectl kustomize` (what `kubectl apply -k` applies, with kustomize's
default load restrictor).

No cluster here: the objects are checked against what the server and the
repository say — probes on the ports the server's flags open, the security
context, the rules volume (a whole ConfigMap directory, never subPath)
holding every file of rules/, each replica's audit volume (a claim per
replica holding the audit log, its checkpoints and the rule archive; the
log's origin naming the pod; the signing key from an optional Secret) and
the audit-stdout option without it, selectors that match the pod labels,
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
# Every overlay shipped (setUpClass adds one more: dev with
# components/audit-stdout, made as the component says to use it).
OVERLAYS = ["dev", "prod", "prod-audit-stdout"]
# Each overlay with the audit log on stdout, and the overlay it changes.
AUDIT_STDOUT = {"prod-audit-stdout": "prod"}
RULES_CONFIGMAP = "trialrules-rules"
AUDIT_KEY_SECRET = "trialrules-audit-key"
AUDIT_KEY_FILE = "ed25519.pem"
# The environment variable holding the first part of the log origin.
ORIGIN_PREFIX = "AUDIT_LOG_ORIGIN_PREFIX"
# The flags of the audit volume (each replica's log, checkpoints and rule
# archive on its own volume), which the manifests set before a server binary
# may have them: see test_every_argument_is_a_flag_the_server_knows.
AUDIT_VOLUME_FLAGS = {"audit-log-origin", "audit-signing-key", "rules-archive"}


def overlay_dir(overlay):
    """dev, prod, ... (k8s/overlays/NAME) or the path of an overlay, as
    scripts/rules-configmap.sh takes them."""
    return overlay if "/" in overlay else os.path.join(ARGS.source, "k8s", "overlays", overlay)


def render(overlay):
    """`kubectl kustomize k8s/overlays/OVERLAY` exactly as a user runs it (and
    as `kubectl apply -k` renders): no --load-restrictor, so a kustomization
    that reads files outside its own directory fails here."""
    result = subprocess.run(
        ["kubectl", "kustomize", overlay_dir(overlay)],
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


def audit_stdout_overlay(work, overlay, namespace):
    """An overlay of OVERLAY with components/audit-stdout, in WORK (relative
    paths: kustomize takes no absolute ones)."""
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "kustomization.yaml"), "w") as f:
        f.write(f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
  - {os.path.relpath(overlay_dir(overlay), work)}
components:
  - {os.path.relpath(os.path.join(ARGS.source, "k8s/components/audit-stdout"), work)}
""")
    return work


def flags(args):
    """--name=value arguments as a dict; --name alone as "true"."""
    out = {}
    for arg in args:
        assert arg.startswith("--"), arg
        name, _, value = arg[2:].partition("=")
        out[name] = value if "=" in arg else "true"
    return out


def env_name(flag):
    """The server's environment twin of a flag: --audit-log, TRIALRULES_AUDIT_LOG."""
    return "TRIALRULES_" + flag.upper().replace("-", "_")


def settings(container):
    """What the server is set to, as it reads it: the TRIALRULES_ variables of
    the container's env (values unexpanded), overridden by its args."""
    out = {}
    for var in container.get("env", []):
        if var["name"].startswith("TRIALRULES_"):
            out[var["name"][len("TRIALRULES_"):].lower().replace("_", "-")] = var.get("value")
    out.update(flags(container["args"]))
    return out


def resolve_env(container, pod):
    """The container's environment as the kubelet gives it to pod POD (a
    dict of its metadata): downward-API fields filled in, and $(VAR)
    replaced by the value of a variable defined before it."""
    out = {}
    for var in container.get("env", []):
        if "valueFrom" in var:
            path = var["valueFrom"]["fieldRef"]["fieldPath"]
            assert path.startswith("metadata."), path
            out[var["name"]] = pod[path[len("metadata."):]]
        else:
            out[var["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: out.get(m.group(1), m.group(0)), var.get("value", ""))
    return out


def under(path, directory):
    return path.startswith(directory.rstrip("/") + "/")


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="trialrules-overlays-")
        dev_stdout = audit_stdout_overlay(os.path.join(cls.work, "dev-audit-stdout"),
                                          "dev", "trialrules-dev")
        # Overlay names, or the path of one for the component over dev.
        cls.overlays = OVERLAYS + [dev_stdout]
        cls.audit_stdout = {**AUDIT_STDOUT, dev_stdout: "dev"}
        # kustomize's objects alone, and everything a deployment applies:
        # those plus the script's ConfigMap.
        cls.kustomized = {overlay: render(overlay) for overlay in cls.overlays}
        cls.rendered = {overlay: cls.kustomized[overlay] + rules_configmap(overlay)
                        for overlay in cls.overlays}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work)

    def objects(self, overlay, kind):
        return [o for o in self.rendered[overlay] if o["kind"] == kind]

    def one(self, overlay, kind, name=None):
        found = [o for o in self.objects(overlay, kind)
                 if name is None or o["metadata"]["name"] == name]
        self.assertEqual(len(found), 1, f"{overlay}: {kind} {name}")
        return found[0]

    def statefulset(self, overlay):
        """The StatefulSet, its pod spec, the server's container and what the
        server is set to (args over the TRIALRULES_ environment)."""
        statefulset = self.one(overlay, "StatefulSet", "trialrules")
        pod = statefulset["spec"]["template"]["spec"]
        container = pod["containers"][0]
        return statefulset, pod, container, settings(container)

    def test_every_overlay_renders_the_same_kinds(self):
        # No PersistentVolumeClaim object: the StatefulSet makes one per
        # replica from its template.
        wanted = {"StatefulSet", "Service", "ConfigMap", "HorizontalPodAutoscaler",
                  "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"}
        for overlay in self.overlays:
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
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                _, _, container, args = self.statefulset(overlay)
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
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                _, pod, container, args = self.statefulset(overlay)
                self.assertNotEqual("plaintext" in args, "tls-cert" in args)
        _, pod, container, args = self.statefulset("prod")
        self.assertIn("tls-client-ca", args)
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["tls"]["secret"]["secretName"], "trialrules-tls")
        for flag, key in [("tls-cert", "tls.crt"), ("tls-key", "tls.key"),
                          ("tls-client-ca", "ca.crt")]:
            self.assertEqual(args[flag], mounts["tls"]["mountPath"] + "/" + key)
        self.assertNotIn("subPath", mounts["tls"])

    def test_security_context_and_resources(self):
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                statefulset, pod, container, args = self.statefulset(overlay)
                self.assertGreaterEqual(statefulset["spec"]["replicas"], 2)
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
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                _, pod, container, args = self.statefulset(overlay)
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
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                printed = rules_configmap(overlay)
                self.assertEqual(len(printed), 1, printed)
                config_map = printed[0]
                self.assertEqual((config_map["apiVersion"], config_map["kind"]),
                                 ("v1", "ConfigMap"))
                statefulset, pod, _, _ = self.statefulset(overlay)
                volume = [v for v in pod["volumes"] if v["name"] == "rules"][0]
                # The name the StatefulSet mounts, without a content hash.
                self.assertEqual(config_map["metadata"]["name"], volume["configMap"]["name"])
                self.assertEqual(config_map["metadata"]["name"], RULES_CONFIGMAP)
                self.assertEqual(config_map["metadata"]["namespace"],
                                 statefulset["metadata"]["namespace"])
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

    def audit_volume(self, overlay):
        """The claim template and where the server's container mounts it."""
        statefulset, pod, container, _ = self.statefulset(overlay)
        templates = statefulset["spec"].get("volumeClaimTemplates", [])
        self.assertEqual(len(templates), 1, templates)
        name = templates[0]["metadata"]["name"]
        mounts = [m for m in container["volumeMounts"] if m["name"] == name]
        self.assertEqual(len(mounts), 1, mounts)
        return templates[0], mounts[0]

    def test_each_replica_keeps_its_audit_log_on_its_own_volume(self):
        for overlay in self.overlays:
            if overlay in self.audit_stdout:
                continue
            with self.subTest(overlay=overlay):
                statefulset, pod, container, args = self.statefulset(overlay)
                spec = statefulset["spec"]
                # One claim per replica, audit-trialrules-N, that a
                # scale-down or the deletion of the StatefulSet leaves.
                claim, mount = self.audit_volume(overlay)
                self.assertEqual(claim["spec"]["accessModes"], ["ReadWriteOnce"])
                self.assertRegex(claim["spec"]["resources"]["requests"]["storage"],
                                 r"^[1-9][0-9]*[MGT]i$")
                self.assertEqual(spec["persistentVolumeClaimRetentionPolicy"],
                                 {"whenScaled": "Retain", "whenDeleted": "Retain"})
                # The claim, not a pod volume of the same name.
                self.assertNotIn(claim["metadata"]["name"],
                                 {v["name"] for v in pod["volumes"]})
                self.assertFalse(mount.get("readOnly", False))
                self.assertNotIn("subPath", mount)
                self.assertNotIn("subPathExpr", mount)
                directory = mount["mountPath"]
                # The log, its checkpoints (default: beside it) and every
                # rotated file (beside it) on the claim, and the rule archive.
                log = args["audit-log"]
                self.assertNotEqual(log, "-")
                self.assertTrue(under(log, directory), log)
                self.assertTrue(under(args.get("audit-checkpoints", log + ".checkpoints"),
                                      directory))
                self.assertTrue(under(args["rules-archive"], directory), args["rules-archive"])
                # Set in the environment, which the audit-stdout component
                # patches by name: a flag in args would win over it.
                self.assertEqual(
                    {f for f in flags(container["args"]) if f.startswith("audit")}, set())
                # Written by uid 10001: the volume's group is the pod's
                # fsGroup, the process's own group.
                security = pod["securityContext"]
                self.assertEqual(security["fsGroup"], security["runAsGroup"])
                self.assertEqual(security.get("fsGroupChangePolicy"), "OnRootMismatch")
                # Pods named trialrules-N under the headless Service, started
                # and stopped in parallel (they need nothing from each other).
                headless = self.one(overlay, "Service", spec["serviceName"])
                self.assertEqual(headless["spec"]["clusterIP"], "None")
                self.assertEqual(spec["podManagementPolicy"], "Parallel")
                self.assertEqual(spec["updateStrategy"]["type"], "RollingUpdate")

    def test_the_log_origin_names_the_pod(self):
        origins = set()
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                statefulset, pod, container, args = self.statefulset(overlay)
                namespace = statefulset["metadata"]["namespace"]
                fields = {v["name"]: v["valueFrom"]["fieldRef"]["fieldPath"]
                          for v in container["env"] if "valueFrom" in v}
                self.assertEqual(fields, {"POD_NAME": "metadata.name",
                                          "POD_NAMESPACE": "metadata.namespace"})
                self.assertIn("$(POD_NAME)", args["audit-log-origin"])
                self.assertIn(f"$({ORIGIN_PREFIX})", args["audit-log-origin"])
                per_pod = []
                for ordinal in range(2):
                    name = f"{statefulset['metadata']['name']}-{ordinal}"
                    env = resolve_env(container, {"name": name, "namespace": namespace})
                    origin = env[env_name("audit-log-origin")]
                    # Every reference defined before it (else the kubelet
                    # leaves "$(...)" as it is); one line, no spaces.
                    self.assertNotIn("$(", origin)
                    self.assertRegex(origin, r"^[a-z0-9.-]+(/[a-z0-9.-]+)+$")
                    self.assertEqual(origin, f"{env[ORIGIN_PREFIX]}/{namespace}/{name}")
                    per_pod.append(origin)
                self.assertEqual(len(set(per_pod)), 2)
                # The audit-stdout variant of an overlay names its pods as
                # the overlay does: the same replicas.
                if overlay not in self.audit_stdout:
                    origins.add(per_pod[0])
        # trialrules-0 of dev and of prod are different logs.
        self.assertEqual(len(origins), 2, origins)

    def test_the_log_origin_prefix_is_patched_as_k8s_readme_says(self):
        # A strategic-merge patch of the prefix variable (by name), as
        # k8s/README.md gives it: kustomize moves the patched variable to the
        # top of env, which the prefix (no $(VAR) of its own) survives.
        with open(os.path.join(ARGS.source, "k8s/README.md")) as f:
            readme = f.read()
        self.assertTrue(f"- name: {ORIGIN_PREFIX}\n" in readme, "k8s/README.md")
        work = tempfile.mkdtemp(prefix="trialrules-origin-")
        self.addCleanup(shutil.rmtree, work)
        with open(os.path.join(work, "kustomization.yaml"), "w") as f:
            f.write(f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {os.path.relpath(overlay_dir("prod"), work)}
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: trialrules
      spec:
        template:
          spec:
            containers:
              - name: trialrules
                env:
                  - name: {ORIGIN_PREFIX}
                    value: audit.hospital.example/eu-1
""")
        statefulset, = [o for o in render(work) if o["kind"] == "StatefulSet"]
        container = statefulset["spec"]["template"]["spec"]["containers"][0]
        env = resolve_env(container, {"name": "trialrules-2", "namespace": "trialrules"})
        self.assertEqual(env[env_name("audit-log-origin")],
                         "audit.hospital.example/eu-1/trialrules/trialrules-2")

    def test_signing_key_from_an_optional_secret(self):
        with open(os.path.join(ARGS.source, "k8s/README.md")) as f:
            readme = f.read()
        # The commands k8s/README.md gives make the Secret the pods mount.
        for command in (f"openssl genpkey -algorithm ed25519 -out {AUDIT_KEY_FILE}",
                        f"secret generic {AUDIT_KEY_SECRET} --from-file={AUDIT_KEY_FILE}"):
            self.assertTrue(command in readme, f"k8s/README.md: no {command!r}")
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                _, pod, container, args = self.statefulset(overlay)
                volumes = [v for v in pod["volumes"]
                           if v.get("secret", {}).get("secretName") == AUDIT_KEY_SECRET]
                self.assertEqual(len(volumes), 1)
                secret = volumes[0]["secret"]
                # Optional: the pods start without it (unsigned checkpoints,
                # as the server says at start).
                self.assertTrue(secret.get("optional", False))
                self.assertNotIn("items", secret)
                # Read by the pod's group (fsGroup), no one else.
                self.assertEqual(secret["defaultMode"] & 0o037, 0)
                mount, = [m for m in container["volumeMounts"]
                          if m["name"] == volumes[0]["name"]]
                self.assertTrue(mount["readOnly"])
                self.assertNotIn("subPath", mount)
                self.assertEqual(args["audit-signing-key"],
                                 mount["mountPath"] + "/" + AUDIT_KEY_FILE)

    def test_audit_stdout_option_is_its_overlay_without_the_volume(self):
        for overlay, volume_overlay in self.audit_stdout.items():
            with self.subTest(overlay=overlay):
                statefulset, pod, container, args = self.statefulset(overlay)
                self.assertEqual(args["audit-log"], "-")
                self.assertNotIn("volumeClaimTemplates", statefulset["spec"])
                self.assertNotIn("persistentVolumeClaimRetentionPolicy", statefulset["spec"])
                self.assertNotIn("PersistentVolumeClaim",
                                 {o["kind"] for o in self.rendered[overlay]})
                _, volume_mount = self.audit_volume(volume_overlay)
                self.assertNotIn(volume_mount["mountPath"],
                                 {m["mountPath"] for m in container["volumeMounts"]})
                self.assertNotIn("rules-archive", args)
                for flag, value in args.items():
                    self.assertFalse(under(value or "", volume_mount["mountPath"]), flag)
                # Everything else as the overlay it changes: the same
                # objects, the StatefulSet but for the audit volume.
                expected = []
                for o in self.rendered[volume_overlay]:
                    o = yaml.safe_load(yaml.safe_dump(o))
                    if o["kind"] == "StatefulSet":
                        del o["spec"]["volumeClaimTemplates"]
                        del o["spec"]["persistentVolumeClaimRetentionPolicy"]
                        c = o["spec"]["template"]["spec"]["containers"][0]
                        c["volumeMounts"] = [m for m in c["volumeMounts"]
                                             if m != volume_mount]
                        c["env"] = [v for v in c["env"]
                                    if v["name"] != env_name("rules-archive")]
                        for v in c["env"]:
                            if v["name"] == env_name("audit-log"):
                                v["value"] = "-"
                    expected.append(o)

                def comparable(objects):
                    out = []
                    for o in objects:
                        o = yaml.safe_load(yaml.safe_dump(o))
                        if o["kind"] == "StatefulSet":
                            # The order of env matters for $(VAR) only,
                            # which test_the_log_origin_names_the_pod checks.
                            c = o["spec"]["template"]["spec"]["containers"][0]
                            c["env"].sort(key=lambda v: v["name"])
                        out.append(o)
                    return sorted(out, key=lambda o: (o["kind"], o["metadata"]["name"]))
                self.assertEqual(comparable(self.rendered[overlay]), comparable(expected))

    def test_selectors_match_the_pod_labels(self):
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                statefulset, pod, container, _ = self.statefulset(overlay)
                labels = statefulset["spec"]["template"]["metadata"]["labels"]
                self.assertTrue(matches(statefulset["spec"]["selector"]["matchLabels"], labels))
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
                self.assertLess(pdb["spec"]["minAvailable"], statefulset["spec"]["replicas"])
                hpa = self.one(overlay, "HorizontalPodAutoscaler")
                self.assertEqual(hpa["spec"]["scaleTargetRef"]["apiVersion"], "apps/v1")
                self.assertEqual(hpa["spec"]["scaleTargetRef"]["kind"], "StatefulSet")
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
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                statefulset, _, _, _ = self.statefulset(overlay)
                labels = statefulset["spec"]["template"]["metadata"]["labels"]
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
        """Every argument, and every TRIALRULES_ variable of the environment,
        is a flag (or the flag's environment twin) that the server's --help
        lists. A server binary built before the audit volume's flags
        (AUDIT_VOLUME_FLAGS: it knows none of them) has the others checked,
        and the test says it skipped those; one that knows any of them must
        know them all."""
        help_text = subprocess.run([ARGS.server, "--help"], capture_output=True, text=True,
                                   timeout=30).stderr
        known = dict(re.findall(r"^  --([a-z-]+) \(env ([A-Z0-9_]+),", help_text, re.M))
        self.assertIn("listen", known)
        self.assertEqual(known["audit-log"], env_name("audit-log"))
        predates = not AUDIT_VOLUME_FLAGS & set(known)
        not_checked = set()
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                _, _, container, args = self.statefulset(overlay)
                unknown = set(args) - set(known)
                if predates:
                    not_checked |= unknown & AUDIT_VOLUME_FLAGS
                    unknown -= AUDIT_VOLUME_FLAGS
                self.assertEqual(unknown, set())
                for var in container.get("env", []):
                    if not var["name"].startswith("TRIALRULES_"):
                        continue
                    flag = var["name"][len("TRIALRULES_"):].lower().replace("_", "-")
                    if flag in known:
                        self.assertEqual(known[flag], var["name"])
        if not_checked:
            self.skipTest(f"{ARGS.server} predates the audit volume: "
                          f"{', '.join(sorted(not_checked))} not checked")

    def test_prometheus_rule_is_the_tested_alert_file(self):
        with open(os.path.join(ARGS.source, "k8s/monitoring/alerts.rules.yaml")) as f:
            alerts = yaml.safe_load(f)
        for overlay in self.overlays:
            with self.subTest(overlay=overlay):
                rule = self.one(overlay, "PrometheusRule")
                self.assertEqual(rule["spec"], alerts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--server", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

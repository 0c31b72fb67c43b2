#!/usr/bin/python3
"""The signed audit log end to end, with the real server and the real CLI:
decisions over gRPC are recorded as a Merkle tree with Ed25519-signed
checkpoints; `trialrules audit verify` passes the log as written and catches
every kind of tampering, naming the record; GetDecisionProof and
`audit prove` give proofs that `audit check-proof` accepts; `replay`
re-derives decisions from the rule archive after their rule file left the
rules directory; a restarted server goes on with the same tree; a rotated
log verifies across its files.

usage: /usr/bin/python3 audit_proof_test.py --server BINARY --cli BINARY --source REPO
"""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None
STUBS = None


def generate_stubs(source, out):
    from grpc_tools import protoc
    include = os.path.join(source, "proto")
    for proto in ["trialrules/v1/rule_file.proto", "trialrules/v1/trial.proto",
                  "trialrules/v1/service.proto"]:
        if protoc.main(["protoc", "-I" + include, "--python_out=" + out,
                        "--grpc_python_out=" + out, os.path.join(include, proto)]) != 0:
            raise RuntimeError("protoc failed on " + proto)
    sys.path.insert(0, out)
    from trialrules.v1 import service_pb2, service_pb2_grpc, rule_file_pb2
    return service_pb2, service_pb2_grpc, rule_file_pb2


def cli(*args):
    return subprocess.run([ARGS.cli] + list(args), capture_output=True, text=True, timeout=120)


class Server:
    def __init__(self, workdir, rules_dir, *flags):
        self.workdir = workdir
        self.port_file = os.path.join(workdir, "port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self.stderr = open(self.stderr_path, "a")
        self.process = subprocess.Popen(
            [ARGS.server, "--listen=127.0.0.1:0", "--plaintext", "--rules-dir=" + rules_dir,
             "--metrics-address=127.0.0.1:0", "--port-file=" + self.port_file,
             "--rules-settle-ms=0", "--reload-interval-ms=100"] + list(flags),
            stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    self.port, self.metrics_port = map(int, f.read().split()[:2])
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stderr.close()
        raise RuntimeError("server did not start: " + open(self.stderr_path).read())

    def ready_stub(self):
        """A stub once the server has loaded its rules."""
        import grpc
        s, g, _ = STUBS
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        stub = g.TrialRulesStub(self.channel)
        deadline = time.monotonic() + 20
        while True:
            try:
                if stub.ListRuleSets(s.ListRuleSetsRequest(), timeout=5).rule_sets:
                    return stub
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def metric(self, name):
        import urllib.request
        page = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                      timeout=10).read().decode()
        for line in page.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no sample of " + name)

    def stop(self):
        if hasattr(self, "channel"):
            self.channel.close()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.stderr.close()
        return code


class SignedAuditLog(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.s, cls.g, cls.r = STUBS
        cls.dir = tempfile.mkdtemp(prefix="trialrules-audit-")
        cls.rules = os.path.join(cls.dir, "rules")
        shutil.copytree(os.path.join(ARGS.source, "rules"), cls.rules)
        cls.key = os.path.join(cls.dir, "ed25519.pem")
        cls.public_key = os.path.join(cls.dir, "ed25519.pub.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", cls.key], check=True)
        subprocess.run(["openssl", "pkey", "-in", cls.key, "-pubout", "-out", cls.public_key],
                       check=True)
        cls.log = os.path.join(cls.dir, "audit.jsonl")
        cls.checkpoints = cls.log + ".checkpoints"
        cls.archive = os.path.join(cls.dir, "archive")
        cls.flags = ["--audit-log=" + cls.log, "--audit-signing-key=" + cls.key,
                     "--audit-log-origin=trialrules.test/replica-0",
                     "--rules-archive=" + cls.archive, "--audit-checkpoint-records=5",
                     "--audit-include-facts"]
        server = Server(cls.dir, cls.rules, *cls.flags)
        try:
            stub = server.ready_stub()
            cls.decisions = []
            for i in range(12):
                response = stub.CheckEligibility(cls.request("AUD-%d" % i), timeout=10)
                cls.decisions.append(response.decision_id)
            cls.screened = cls.screen(stub)
            cls.trial = stub.EvaluateTrial(cls.trial_request(), timeout=10).decision_id
            grade = cls.s.GradeRequest(table_id="astct-crs-2019", subject_ref="AUD-G",
                                       site_id="SITE-A")
            grade.observation_sets.add().observations.extend(
                [cls.fact("temp_c", 39.0), cls.fact("fever_other_cause", False),
                 cls.r.FactValue(name="o2_device", text="hfnc")])
            cls.graded = stub.GradeEvents(grade, timeout=10).decision_id
            # A proof from the running server, before any shutdown checkpoint.
            cls.rpc_proof = stub.GetDecisionProof(
                cls.s.GetDecisionProofRequest(decision_id=cls.decisions[11]), timeout=30)
            with cls.assertRaises(cls, grpc.RpcError) as raised:
                stub.GetDecisionProof(cls.s.GetDecisionProofRequest(decision_id="not-an-id"),
                                      timeout=10)
            cls.bad_id = raised.exception
        finally:
            cls.stop_code = server.stop()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def facts(cls):
        with open(os.path.join(ARGS.source, "tests/data/facts/eligible_patient.json")) as f:
            return json.load(f)["facts"]

    @classmethod
    def fact(cls, name, value):
        f = STUBS[2].FactValue(name=name)
        if isinstance(value, dict):
            f.unit = value["unit"]
            value = value["value"]
        if isinstance(value, bool):
            f.boolean = value
        elif isinstance(value, (int, float)):
            f.number = value
        else:
            f.date = value
        return f

    @classmethod
    def request(cls, subject):
        request = STUBS[0].EvaluateRequest(protocol_id="NCT04094766", subject_ref=subject,
                                           site_id="SITE-A")
        for name, value in sorted(cls.facts().items()):
            request.facts.append(cls.fact(name, value))
        return request

    @classmethod
    def screen(cls, stub):
        facts = cls.facts()
        names = sorted(facts)
        units = [facts[n]["unit"] if isinstance(facts[n], dict) else "" for n in names]
        header = cls.s.ScreenHeader(protocol_id="NCT04094766", fact_names=names, units=units)
        patients = []
        for i in range(3):
            patient = cls.s.ScreenPatient(subject_ref="SCR-%d" % i)
            for name in names:
                value = facts[name]["value"] if isinstance(facts[name], dict) else facts[name]
                if isinstance(value, bool):
                    patient.values.append(cls.s.ScreenValue(boolean=value))
                elif isinstance(value, (int, float)):
                    patient.values.append(cls.s.ScreenValue(number=value))
                else:
                    patient.values.append(cls.s.ScreenValue(date=value))
            patients.append(patient)
        requests = [cls.s.ScreenRequest(header=header, patients=patients)]
        ids = []
        for response in stub.ScreenPatients(iter(requests), timeout=10):
            ids += [r.decision_id for r in response.results]
        return ids

    @classmethod
    def trial_request(cls):
        """tests/data/records/pending_icans.json as an EvaluateTrialRequest."""
        with open(os.path.join(ARGS.source, "tests/data/records/pending_icans.json")) as f:
            data = json.load(f)
        request = cls.s.EvaluateTrialRequest(site_id="SITE-A")
        records = request.records
        records.protocol_id = data["protocol_id"]
        records.as_of_date = data["as_of_date"]
        records.current_dose_level = data["current_dose_level"]
        for p in data["patients"]:
            patient = records.patients.add(subject_ref=p["subject_ref"], dose_level=p["dose_level"],
                                           infusion_date=p.get("infusion_date") or "")
            for e in p.get("events") or []:
                event = patient.events.add(term=e["term"], onset_date=e["onset_date"],
                                           resolution_date=e.get("resolution_date") or "",
                                           attribution=e.get("attribution") or "")
                if e.get("grade") is not None:
                    event.grade = e["grade"]
                if e.get("hematologic") is not None:
                    event.hematologic = e["hematologic"]
                for name, value in (e.get("observations") or {}).items():
                    if isinstance(value, bool):
                        event.observations.add(name=name, boolean=value)
                    elif isinstance(value, str):
                        event.observations.add(name=name, text=value)
                    else:
                        event.observations.add(name=name, number=value)
        return request

    def lines(self):
        with open(self.log, "rb") as f:
            return f.read().split(b"\n")[:-1]

    def verify(self, log=None, checkpoints=None):
        log = log or self.log
        return cli("audit", "verify", log, "--checkpoints", checkpoints or log + ".checkpoints",
                   "--public-key", self.public_key)

    def tampered_copy(self, change):
        """A copy of the log (and its checkpoints) with `change` applied to its lines."""
        copy = os.path.join(tempfile.mkdtemp(dir=self.dir), "audit.jsonl")
        lines = self.lines()
        changed = change(list(lines))
        with open(copy, "wb") as f:
            f.write(changed if isinstance(changed, bytes) else b"".join(l + b"\n" for l in changed))
        shutil.copy(self.checkpoints, copy + ".checkpoints")
        return copy

    def test_server_stopped_cleanly_and_every_record_is_a_leaf(self):
        self.assertEqual(self.stop_code, 0)
        lines = self.lines()
        self.assertEqual(len(lines), 15)  # 12 decisions, a screening batch, a trial, a grading
        for i, line in enumerate(lines):
            record = json.loads(line)
            self.assertEqual(record["leaf_index"], i)
            self.assertEqual(sorted(record), ["leaf_index", "prev_leaf_hash", "record", "time"])
        self.assertEqual(json.loads(lines[0])["record"]["decision_id"], self.decisions[0])
        self.assertEqual(json.loads(lines[0])["record"]["as_of_date"], "2020-01-15")

    def test_verify_passes_the_log_as_written(self):
        result = self.verify()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("OK: 15 records", result.stdout)

    def assert_caught(self, copy, *expected):
        result = self.verify(copy)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        for text in expected:
            self.assertIn(text, result.stdout)
        return result.stdout

    def test_an_edited_byte_is_pinned_to_its_record(self):
        def edit(lines):
            lines[4] = lines[4].replace(b'"decision":"ELIGIBLE"', b'"decision":"INELIGIBL"')
            return lines
        self.assert_caught(self.tampered_copy(edit), "record 4 was altered")

    def test_a_deleted_line_is_caught(self):
        def delete(lines):
            del lines[6]
            return lines
        self.assert_caught(self.tampered_copy(delete),
                           "record 6 has leaf_index 7 where 6 follows")

    def test_swapped_lines_are_caught(self):
        def swap(lines):
            lines[2], lines[3] = lines[3], lines[2]
            return lines
        self.assert_caught(self.tampered_copy(swap), "record 2 has leaf_index 3 where 2 follows")

    def test_a_truncated_log_is_caught(self):
        def truncate(lines):
            return b"".join(l + b"\n" for l in lines[:9]) + lines[9][:40]
        self.assert_caught(self.tampered_copy(truncate), "record 9 is cut short",
                           "records 10 to 14 were removed")

    def test_a_forged_appended_record_is_caught(self):
        def forge(lines):
            last = json.loads(lines[-1])
            import hashlib
            forged = dict(last)
            forged["leaf_index"] = last["leaf_index"] + 1
            forged["prev_leaf_hash"] = hashlib.sha256(b"\0" + lines[-1]).hexdigest()
            return lines + [json.dumps(forged, separators=(",", ":"), sort_keys=True).encode()]
        self.assert_caught(self.tampered_copy(forge), "records 15 to 15 are in no signed checkpoint")

    def test_a_replaced_checkpoint_is_caught(self):
        copy = self.tampered_copy(lambda lines: lines)
        # A checkpoint under another key's name.
        text = open(self.checkpoints).read()
        forged = text.replace("\n\n— ", "\n\n— x", 1)
        open(copy + ".checkpoints", "w").write(forged)
        self.assert_caught(copy, "checkpoint 1", "no signature by")
        # A checkpoint whose tree head was rewritten under its signature.
        lines = text.split("\n")
        lines[2] = ("B" if lines[2][0] != "B" else "C") + lines[2][1:]
        open(copy + ".checkpoints", "w").write("\n".join(lines))
        self.assert_caught(copy, "checkpoint 1", "does not verify")

    def test_proofs_from_the_server_and_from_the_files_check_out(self):
        self.assertEqual(self.bad_id.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('decision_id "not-an-id"', self.bad_id.details())
        self.assertEqual(self.rpc_proof.leaf_index, 11)
        self.assertGreaterEqual(self.rpc_proof.tree_size, 12)
        proof_file = os.path.join(self.dir, "rpc.tlog-proof")
        open(proof_file, "w").write(self.rpc_proof.tlog_proof)
        result = cli("audit", "check-proof", proof_file, "--public-key", self.public_key)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("OK: record 11", result.stdout)

        result = cli("audit", "prove", self.log, self.screened[1])
        self.assertEqual(result.returncode, 0, result.stderr)
        offline = os.path.join(self.dir, "offline.tlog-proof")
        open(offline, "w").write(result.stdout)
        checked = cli("audit", "check-proof", offline, "--public-key", self.public_key)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        self.assertIn("OK: record 12", checked.stdout)

        # One changed byte of the record inside the proof: refused.
        text = open(offline).read().splitlines(True)
        import base64
        record = base64.b64decode(text[1].split()[1]).replace(b"SCR-1", b"SCR-9")
        text[1] = "extra " + base64.b64encode(record).decode() + "\n"
        open(offline, "w").write("".join(text))
        checked = cli("audit", "check-proof", offline, "--public-key", self.public_key)
        self.assertEqual(checked.returncode, 1)
        self.assertIn("is not in the checkpoint's tree", checked.stderr)

    def test_replay_after_the_rule_file_left_the_rules_directory(self):
        rule_file = os.path.join(self.rules, "NCT04094766-v1.0.textproto")
        if os.path.exists(rule_file):
            os.unlink(rule_file)
        facts_file = os.path.join(ARGS.source, "tests/data/facts/eligible_patient.json")
        for decision in [self.decisions[3], self.screened[2]]:
            result = cli("replay", "--audit", self.log, "--archive", self.archive,
                         "--decision", decision, "--facts", facts_file)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("IDENTICAL", result.stdout)
        # From the facts in the record itself (--audit-include-facts).
        result = cli("replay", "--audit", self.log, "--archive", self.archive,
                     "--decision", self.decisions[5])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("IDENTICAL", result.stdout)
        # Other facts are not the decision's.
        other = os.path.join(self.dir, "other_facts.json")
        facts = self.facts()
        facts["karnofsky"] = 70
        json.dump({"facts": facts}, open(other, "w"))
        result = cli("replay", "--audit", self.log, "--archive", self.archive,
                     "--decision", self.decisions[3], "--facts", other)
        self.assertEqual(result.returncode, 1)
        self.assertIn("these facts are not the decision's", result.stderr)


    def test_replay_of_a_trial_evaluation_and_a_grading(self):
        records = os.path.join(ARGS.source, "tests/data/records/pending_icans.json")
        for extra in [[], ["--records", records]]:
            result = cli("replay", "--audit", self.log, "--archive", self.archive,
                         "--decision", self.trial, *extra)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("escalation INDETERMINATE", result.stdout)
            self.assertIn("IDENTICAL", result.stdout)
        result = cli("replay", "--audit", self.log, "--archive", self.archive,
                     "--decision", self.graded)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("IDENTICAL", result.stdout)
        # Records that differ from the decision's are refused.
        other = os.path.join(self.dir, "other_records.json")
        data = json.load(open(records))
        data["as_of_date"] = "2020-04-30"
        json.dump(data, open(other, "w"))
        result = cli("replay", "--audit", self.log, "--archive", self.archive,
                     "--decision", self.trial, "--records", other)
        self.assertEqual(result.returncode, 1)
        self.assertIn("these records are not the decision's", result.stderr)


class ResumedAndRotatedLog(unittest.TestCase):
    """A restarted server goes on with the tree; a small size limit rotates
    the file and the tree continues across files."""

    def test_restart_and_rotation_keep_one_verifiable_tree(self):
        import grpc
        s, g, r = STUBS
        workdir = tempfile.mkdtemp(prefix="trialrules-rotate-")
        try:
            key = os.path.join(workdir, "k.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True)
            public_key = os.path.join(workdir, "k.pub")
            subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", public_key],
                           check=True)
            log = os.path.join(workdir, "audit.jsonl")
            # No checkpoint by time: only the one at shutdown (the gauges
            # below), however slow the machine.
            flags = ["--audit-log=" + log, "--audit-signing-key=" + key,
                     "--audit-log-max-bytes=4000", "--audit-checkpoint-seconds=3600"]
            for run in range(2):
                server = Server(workdir, os.path.join(ARGS.source, "rules"), *flags)
                stub = server.ready_stub()
                for i in range(10):
                    stub.CheckEligibility(SignedAuditLog.request("ROT-%d-%d" % (run, i)),
                                          timeout=10)
                # The tree goes on from the first run; its checkpoint at
                # shutdown is what the second run starts from.
                self.assertEqual(server.metric("trialrules_audit_tree_size"), 10 * (run + 1))
                self.assertEqual(server.metric("trialrules_audit_checkpoint_tree_size"), 10 * run)
                self.assertEqual(server.stop(), 0)
            files = sorted(glob.glob(log + ".0*"))
            self.assertGreaterEqual(len(files), 2, os.listdir(workdir))
            result = cli("audit", "verify", log, "--public-key", public_key)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("OK: 20 records in %d file(s)" % (len(files) + 1), result.stdout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    global ARGS, STUBS
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--source", required=True)
    ARGS, rest = parser.parse_known_args()
    stubs_dir = tempfile.mkdtemp(prefix="trialrules-stubs-")
    try:
        STUBS = generate_stubs(ARGS.source, stubs_dir)
        program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        return 0 if program.result.wasSuccessful() else 1
    finally:
        shutil.rmtree(stubs_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

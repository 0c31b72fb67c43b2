#!/usr/bin/python3
"""Calls every trialrules RPC the way another team's service would: from
Python, with Debian's python3-grpcio, with stubs generated at test time by
grpc_tools.protoc from the published .proto files. Runs the real server.

usage: /usr/bin/python3 python_client_test.py --server BINARY --source REPO
"""
import argparse
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
STUBS = None  # (service_pb2, service_pb2_grpc, rule_file_pb2, health_pb2, health_pb2_grpc)


def generate_stubs(source, out):
    from grpc_tools import protoc
    protos = [
        (os.path.join(source, "proto"), "trialrules/v1/rule_file.proto"),
        (os.path.join(source, "proto"), "trialrules/v1/trial.proto"),
        (os.path.join(source, "proto"), "trialrules/v1/service.proto"),
        # Rooted below "grpc/" so that the module is health.v1, not grpc.health.v1
        # (which the installed grpc package would shadow); the wire name is
        # still grpc.health.v1.Health.
        (os.path.join(source, "tests", "proto", "grpc"), "health/v1/health.proto"),
    ]
    for include, proto in protos:
        code = protoc.main(["protoc", "-I" + include, "--python_out=" + out,
                            "--grpc_python_out=" + out, os.path.join(include, proto)])
        if code != 0:
            raise RuntimeError("protoc failed on " + proto)
    sys.path.insert(0, out)
    from trialrules.v1 import service_pb2, service_pb2_grpc, rule_file_pb2
    from health.v1 import health_pb2, health_pb2_grpc
    return service_pb2, service_pb2_grpc, rule_file_pb2, health_pb2, health_pb2_grpc


class Server:
    def __init__(self, binary, rules_dir, workdir):
        self.port_file = os.path.join(workdir, "port")
        self.audit = os.path.join(workdir, "audit.jsonl")
        self.stderr = open(os.path.join(workdir, "stderr.log"), "w")
        self.process = subprocess.Popen(
            [binary, "--listen=127.0.0.1:0", "--plaintext", "--rules-dir=" + rules_dir,
             "--audit-log=" + self.audit, "--port-file=" + self.port_file,
             "--metrics-address=127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                self.port, self.metrics_port, _ = map(int, open(self.port_file).read().split())
                return
            time.sleep(0.02)
        raise RuntimeError("server did not start")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.stderr.close()
        return code


class TrialRulesFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.s, cls.g, cls.r, cls.h, cls.hg = STUBS
        cls.workdir = tempfile.mkdtemp(prefix="trialrules-py-")
        cls.server = Server(ARGS.server, os.path.join(ARGS.source, "rules"), cls.workdir)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.server.port)
        cls.stub = cls.g.TrialRulesStub(cls.channel)
        health = cls.hg.HealthStub(cls.channel)
        deadline = time.monotonic() + 20
        while True:
            try:
                status = health.Check(cls.h.HealthCheckRequest(), timeout=2).status
                if status == cls.h.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server never became SERVING")
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.server.stop()
        shutil.rmtree(cls.workdir, ignore_errors=True)
        assert code == 0, "server exit code %d" % code

    def fact(self, name, value, unit=""):
        f = self.r.FactValue(name=name, unit=unit)
        if isinstance(value, bool):
            f.boolean = value
        elif isinstance(value, (int, float)):
            f.number = value
        else:
            f.date = value
        return f

    def eligible_request(self, **fields):
        with open(os.path.join(ARGS.source, "tests/data/facts/eligible_patient.json")) as f:
            facts = json.load(f)["facts"]
        request = self.s.EvaluateRequest(protocol_id="NCT04094766", subject_ref="PY-1",
                                         site_id="SITE-PY", **fields)
        for name, value in sorted(facts.items()):
            if isinstance(value, dict):
                request.facts.append(self.fact(name, value["value"], value["unit"]))
            else:
                request.facts.append(self.fact(name, value))
        return request

    def assert_refused(self, call, request, code, message):
        with self.assertRaises(self.grpc.RpcError) as raised:
            call(request, timeout=5)
        self.assertEqual(raised.exception.code(), code)
        self.assertEqual(raised.exception.details(), message)

    def test_check_eligibility(self):
        response = self.stub.CheckEligibility(self.eligible_request(), timeout=5)
        self.assertEqual(response.decision, self.s.DECISION_ELIGIBLE)
        self.assertEqual(response.rule_set.version, "1.0")
        self.assertEqual(len(response.rule_set.sha256), 64)
        self.assertEqual(response.subject_ref, "PY-1")
        self.assertEqual(response.site_id, "SITE-PY")
        self.assertEqual(len(response.decision_id), 32)
        self.assertEqual([r.id for r in response.rules][:3], ["I1", "I2", "I3"])
        self.assertTrue(all(r.outcome in (self.s.OUTCOME_TRUE, self.s.OUTCOME_FALSE)
                            for r in response.rules))
        with open(self.server.audit) as audit:
            self.assertIn('"decision_id":"%s"' % response.decision_id, audit.read())

    def test_check_eligibility_from_a_fhir_bundle(self):
        # The eligible patient as a FHIR R4 Bundle, with only the assessment
        # date typed: the same answer and the same facts_sha256 in the audit
        # log as the typed facts, and the resource of each fact.
        with open(os.path.join(ARGS.source, "tests/data/fhir/eligible_patient.json")) as f:
            bundle = f.read()
        request = self.s.EvaluateRequest(protocol_id="NCT04094766", subject_ref="PY-1",
                                         site_id="SITE-PY", fhir_bundle_json=bundle)
        request.facts.append(self.fact("assessment_date", "2020-01-15"))
        from_bundle = self.stub.CheckEligibility(request, timeout=5)
        typed = self.stub.CheckEligibility(self.eligible_request(), timeout=5)
        self.assertEqual(from_bundle.decision, self.s.DECISION_ELIGIBLE)
        self.assertEqual([(r.id, r.outcome) for r in from_bundle.rules],
                         [(r.id, r.outcome) for r in typed.rules])
        provenance = {p.fact: p.source for p in from_bundle.provenance}
        self.assertEqual(provenance["sex_female"], "Patient/p1")
        self.assertTrue(provenance["karnofsky"].startswith("Observation/"))
        self.assertEqual(len(typed.provenance), 0)
        hashes = {}
        with open(self.server.audit) as audit:
            for line in audit:
                record = json.loads(line).get("record", {})
                if record.get("decision_id") in (from_bundle.decision_id, typed.decision_id):
                    hashes[record["decision_id"]] = record["facts_sha256"]
        self.assertEqual(len(hashes), 2)
        self.assertEqual(hashes[from_bundle.decision_id], hashes[typed.decision_id])

        request.facts.append(self.fact("karnofsky", 90))
        with self.assertRaises(self.grpc.RpcError) as raised:
            self.stub.CheckEligibility(request, timeout=5)
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('fact "karnofsky" is given more than one way', raised.exception.details())

    def test_screen_patients_from_fhir_bulk_ndjson(self):
        # The eligible patient's Bundle as two patients of a Bulk Data
        # export (resources one per line, each Observation naming its
        # patient), screened on the Bundle's assessment date: both eligible,
        # and their facts hash as the Bundle's and the typed facts do.
        with open(os.path.join(ARGS.source, "tests/data/fhir/eligible_patient.json")) as f:
            bundle = json.load(f)
        lines = []
        for patient in ("p1", "p2"):
            for entry in bundle["entry"]:
                resource = json.loads(json.dumps(entry["resource"]))
                if resource["resourceType"] == "Patient":
                    resource["id"] = patient
                else:
                    resource["id"] = patient + "-" + resource["id"]
                    resource["subject"] = {"reference": "Patient/" + patient}
                lines.append(json.dumps(resource))
        lines.insert(3, "{not json")
        header = self.s.ScreenHeader(protocol_id="NCT04094766", as_of_date="2020-01-15")
        responses = list(self.stub.ScreenPatients(
            iter([self.s.ScreenRequest(header=header, fhir_ndjson="\n".join(lines))]),
            timeout=5))
        self.assertEqual(len(responses), 1)
        screened = responses[0]
        self.assertEqual([r.subject_ref for r in screened.results], ["Patient/p1", "Patient/p2"])
        self.assertEqual([r.decision for r in screened.results], [self.s.DECISION_ELIGIBLE] * 2)
        self.assertEqual(len(screened.fhir_line_errors), 1)
        self.assertTrue(screened.fhir_line_errors[0].startswith("line 4: not JSON"),
                        screened.fhir_line_errors[0])
        typed = self.stub.CheckEligibility(self.eligible_request(), timeout=5)
        ids = {r.decision_id for r in screened.results}
        hashes = set()
        with open(self.server.audit) as audit:
            for line in audit:
                record = json.loads(line).get("record", {})
                if record.get("decision_id") == typed.decision_id:
                    hashes.add(record["facts_sha256"])
                for decision in record.get("decisions", []):
                    if decision["decision_id"] in ids:
                        hashes.add(decision["facts_sha256"])
        self.assertEqual(len(hashes), 1)

    def test_check_eligibility_reports_missing_facts(self):
        request = self.eligible_request()
        kept = [f for f in request.facts if f.name != "karnofsky"]
        del request.facts[:]
        request.facts.extend(kept)
        response = self.stub.CheckEligibility(request, timeout=5)
        self.assertEqual(response.decision, self.s.DECISION_INDETERMINATE)
        self.assertEqual(list(response.missing_facts), ["karnofsky"])
        i6 = [r for r in response.rules if r.id == "I6"][0]
        self.assertEqual(i6.outcome, self.s.OUTCOME_UNKNOWN)
        self.assertEqual(list(i6.missing_facts), ["karnofsky"])

    def test_check_withdrawal(self):
        request = self.s.EvaluateRequest(protocol_id="NCT04094766", version="2.0", facts=[
            self.fact("consent_withdrawn", True)])
        response = self.stub.CheckWithdrawal(request, timeout=5)
        self.assertEqual(response.decision, self.s.DECISION_WITHDRAW)
        self.assertEqual(response.rule_set.version, "2.0")

    def test_evaluate_escalation(self):
        request = self.s.EvaluateRequest(protocol_id="NCT04094766", dose_level="DL1", facts=[
            self.fact("n_treated", 6), self.fact("n_dlt", 1)])
        response = self.stub.EvaluateEscalation(request, timeout=5)
        self.assertEqual(response.decision, self.s.DECISION_ESCALATE)

    def test_evaluate_stopping(self):
        request = self.s.EvaluateRequest(protocol_id="NCT04094766", facts=[
            self.fact("n_infused", 3), self.fact("n_treatment_related_deaths", 0),
            self.fact("n_grade4plus_crs", 1), self.fact("n_grade4plus_icans", 0)])
        response = self.stub.EvaluateStopping(request, timeout=5)
        self.assertEqual(response.decision, self.s.DECISION_NOT_TRIGGERED)

    def test_screen_patients(self):
        header = self.s.ScreenHeader(protocol_id="NCT04094766", version="1.0",
                                     fact_names=["informed_consent", "karnofsky"])
        patients = [self.s.ScreenPatient(subject_ref="A", values=[
                        self.s.ScreenValue(boolean=False), self.s.ScreenValue(number=90)]),
                    self.s.ScreenPatient(subject_ref="B", values=[
                        self.s.ScreenValue(boolean=True), self.s.ScreenValue(number=101)])]
        responses = list(self.stub.ScreenPatients(
            iter([self.s.ScreenRequest(header=header, patients=patients)]), timeout=5))
        self.assertEqual(len(responses), 1)
        first = responses[0]
        self.assertEqual(first.rule_set.version, "1.0")
        self.assertEqual(first.results[0].decision, self.s.DECISION_INELIGIBLE)
        self.assertEqual(first.results[1].error,
                         'patients[1]: fact "karnofsky" = 101: outside the valid range 0 to 100')
        missing = [first.fact_names[i] for i in first.results[0].missing_fact_indexes]
        self.assertIn("lvef_pct", missing)

    def test_screen_patients_compact_rows(self):
        # The same two rows as test_screen_patients, as packed numbers and
        # dates (a date column added), as a bulk loader in Python would send.
        header = self.s.ScreenHeader(
            protocol_id="NCT04094766", version="1.0",
            fact_names=["informed_consent", "assessment_date", "karnofsky"])
        patients = [self.s.ScreenPatient(subject_ref="A", numbers=[0, 90], dates=["2020-01-15"]),
                    self.s.ScreenPatient(subject_ref="B", numbers=[1, 101], dates=[""]),
                    self.s.ScreenPatient(subject_ref="C", numbers=[float("nan"), 80],
                                         dates=["2020-01-15"])]
        responses = list(self.stub.ScreenPatients(
            iter([self.s.ScreenRequest(header=header, patients=patients)]), timeout=5))
        first = responses[0]
        self.assertEqual(list(first.date_columns), [1])
        self.assertEqual(first.results[0].decision, self.s.DECISION_INELIGIBLE)
        self.assertEqual(first.results[1].error,
                         'patients[1]: fact "karnofsky" = 101: outside the valid range 0 to 100')
        missing = [first.fact_names[i] for i in first.results[2].missing_fact_indexes]
        self.assertIn("informed_consent", missing)
        self.assertNotIn("karnofsky", missing)

    def test_grade_events_from_an_independent_client(self):
        # Bilirubin 1.8 mg/dL with a ULN of 1.2 is exactly 1.5 x ULN: grade 1.
        request = self.s.GradeRequest(table_id="ctcae-5.0", term="blood_bilirubin_increased",
                                      subject_ref="PY-1")
        request.observation_sets.add().observations.extend([
            self.fact("value", 1.8), self.fact("uln", 1.2),
            self.fact("baseline_abnormal", False)])
        o2 = self.r.FactValue(name="o2_device", text="hfnc")
        crs = self.s.GradeRequest(table_id="astct-crs-2019")
        crs.observation_sets.add().observations.extend(
            [self.fact("temp_c", 39.0), self.fact("fever_other_cause", False), o2])
        response = self.stub.GradeEvents(request, timeout=5)
        self.assertTrue(response.results[0].known)
        self.assertEqual(response.results[0].grade, 1)
        self.assertEqual(list(response.results[0].domains), ["uln"])
        self.assertEqual(len(response.decision_id), 32)
        # Fever and high-flow oxygen (3), the rest unknown: 3 to 5.
        open_grade = self.stub.GradeEvents(crs, timeout=5).results[0]
        self.assertFalse(open_grade.known)
        self.assertEqual((open_grade.grade_min, open_grade.grade_max), (3, 5))
        self.assertIn("crs_death", open_grade.missing)
        with self.assertRaises(self.grpc.RpcError) as refused:
            bad = self.s.GradeRequest(table_id="astct-crs-2019")
            bad.observation_sets.add().observations.append(
                self.r.FactValue(name="o2_device", text="tent"))
            self.stub.GradeEvents(bad, timeout=5)
        self.assertEqual(refused.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('observation "o2_device" = "tent": not an allowed value',
                      refused.exception.details())

    def test_evaluate_trial_from_records(self):
        # The records of tests/data/records/pending_icans.json, as an
        # independent client builds them: P05's grade 3 ICANS, 2 days old and
        # ongoing, decides between ESCALATE and EXPAND at DL2.
        with open(os.path.join(ARGS.source, "tests/data/records/pending_icans.json")) as f:
            data = json.load(f)
        records = self.s.EvaluateTrialRequest().records
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
                for name, value in (e.get("observations") or {}).items():
                    if isinstance(value, bool):
                        event.observations.add(name=name, boolean=value)
                    elif isinstance(value, str):
                        event.observations.add(name=name, text=value)
                    else:
                        event.observations.add(name=name, number=value)
        request = self.s.EvaluateTrialRequest(records=records, site_id="PY-SITE")
        response = self.stub.EvaluateTrial(request, timeout=5)
        evaluation = response.evaluation
        self.assertEqual((evaluation.protocol_id, evaluation.version), ("NCT04094766", "1.0"))
        self.assertEqual(len(response.decision_id), 32)
        self.assertEqual([p.subject_ref for p in evaluation.patients if p.dlt == 1], ["P01"])
        self.assertEqual(evaluation.patients[0].events[1].criterion, "D4")
        self.assertEqual(evaluation.escalation.decision, "INDETERMINATE")
        self.assertEqual([(list(r.dlt), r.decision) for r in evaluation.escalation.by_resolution],
                         [([], "ESCALATE"), (["P05"], "EXPAND")])
        self.assertEqual(list(evaluation.escalation.pending[0].cleared_if),
                         ["resolves by 2020-03-31"])
        self.assertEqual(evaluation.stopping.decision, "NOT_TRIGGERED")
        records.patients[1].subject_ref = "P01"
        with self.assertRaises(self.grpc.RpcError) as refused:
            self.stub.EvaluateTrial(self.s.EvaluateTrialRequest(records=records), timeout=5)
        self.assertEqual(refused.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(refused.exception.details(),
                         "patients[1] (P01): subject_ref is given for two patients")

    def test_decision_proof_needs_a_signed_log(self):
        # This server runs without --audit-signing-key (audit_proof_test
        # covers a signed one): a proof is refused, saying why.
        response = self.stub.CheckEligibility(self.eligible_request(), timeout=5)
        self.assert_refused(self.stub.GetDecisionProof,
                            self.s.GetDecisionProofRequest(decision_id=response.decision_id),
                            self.grpc.StatusCode.FAILED_PRECONDITION,
                            "the audit log is not signed (the server runs without "
                            "--audit-signing-key): decisions cannot be proven")

    def test_list_and_get_rule_sets(self):
        listed = self.stub.ListRuleSets(self.s.ListRuleSetsRequest(), timeout=5)
        self.assertEqual([(r.rule_set.protocol_id, r.rule_set.version, r.effective_from)
                          for r in listed.rule_sets],
                         [("NCT03671460", "1.0", "2018-09-07"),
                          ("NCT04094766", "1.0", "2019-09-01"),
                          ("NCT04094766", "2.0", "2020-06-01")])
        self.assertEqual(sorted(t.table_id for t in listed.tables),
                         ["astct-crs-2019", "astct-icans-2019", "ctcae-5.0"])
        full = self.stub.GetRuleSet(self.s.GetRuleSetRequest(
            protocol_id="NCT04094766", version="1.0"), timeout=5)
        self.assertEqual(len(full.rules), 34)
        i6 = [r for r in full.rules if r.id == "I6"][0]
        self.assertEqual(i6.expression, "karnofsky >= 70")
        karnofsky = [f for f in full.facts if f.name == "karnofsky"][0]
        self.assertEqual((karnofsky.type, karnofsky.min, karnofsky.max, karnofsky.integer),
                         (self.r.NUMBER, 0.0, 100.0, True))

    def test_validate_rule_set(self):
        path = os.path.join(ARGS.source, "tests/data/bad_rules/bool_as_number.textproto")
        with open(path) as f:
            response = self.stub.ValidateRuleSet(self.s.ValidateRuleSetRequest(
                text=f.read(), file_name="bool_as_number.textproto"), timeout=5)
        self.assertFalse(response.valid)
        with open(path.replace(".textproto", ".expected")) as f:
            self.assertEqual(response.problems[0].text + "\n", f.read())

    def test_compare_versions(self):
        def requests():
            yield self.s.CompareRequest(
                protocol_id="NCT04094766", base_version="1.0", candidate_version="2.0",
                patients=[self.s.ComparePatient(subject_ref="K65", facts=[
                    self.fact("assessment_date", "2020-07-01"),
                    self.fact("informed_consent", True), self.fact("karnofsky", 65)])])
            yield self.s.CompareRequest(patients=[self.s.ComparePatient(subject_ref="K90", facts=[
                self.fact("informed_consent", True), self.fact("karnofsky", 90)])])
        response = self.stub.CompareVersions(requests(), timeout=5)
        self.assertEqual((response.patients, response.changed), (2, 1))
        self.assertEqual(response.changes[0].subject_ref, "K65")
        # I6 now passes; E11 is new and UNKNOWN without prior_car_t.
        self.assertEqual(list(response.changes[0].rules), ["I6", "E11"])

    def test_refusals(self):
        grpc = self.grpc
        self.assert_refused(self.stub.CheckEligibility, self.s.EvaluateRequest(),
                            grpc.StatusCode.INVALID_ARGUMENT, "protocol_id is required")
        self.assert_refused(self.stub.CheckEligibility,
                            self.s.EvaluateRequest(protocol_id="NOPE"),
                            grpc.StatusCode.NOT_FOUND,
                            'protocol_id "NOPE": no such protocol is loaded')
        self.assert_refused(self.stub.CheckEligibility,
                            self.s.EvaluateRequest(protocol_id="NCT04094766", facts=[
                                self.fact("assessment_date", "2018-05-05")]),
                            grpc.StatusCode.FAILED_PRECONDITION,
                            "protocol NCT04094766: no version is in force on 2018-05-05")
        self.assert_refused(self.stub.CheckEligibility,
                            self.s.EvaluateRequest(protocol_id="NCT04094766", facts=[
                                self.fact("bilirubin_mg_dl", 1.0, "mg/L")]),
                            grpc.StatusCode.INVALID_ARGUMENT,
                            'fact "bilirubin_mg_dl" = 1 mg/L: unit "mg/L" is not accepted '
                            '(mg/dL, umol/L)')
        self.assert_refused(self.stub.CheckWithdrawal,
                            self.s.EvaluateRequest(protocol_id="NCT04094766", facts=[
                                self.fact("pregnant", 1)]),
                            grpc.StatusCode.INVALID_ARGUMENT,
                            'fact "pregnant" = 1: expected true or false')
        self.assert_refused(self.stub.CheckEligibility,
                            self.s.EvaluateRequest(protocol_id="NCT04094766", facts=[
                                self.fact("weight_kg", float("nan"))]),
                            grpc.StatusCode.INVALID_ARGUMENT,
                            'fact "weight_kg" = nan: not a finite number')


def main():
    global ARGS, STUBS
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--source", required=True)
    ARGS, rest = parser.parse_known_args()
    stubs_dir = tempfile.mkdtemp(prefix="trialrules-stubs-")
    try:
        STUBS = generate_stubs(ARGS.source, stubs_dir)
        program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        result = program.result
        print("%d passed, %d failed" % (result.testsRun - len(result.failures) - len(result.errors),
                                        len(result.failures) + len(result.errors)))
        return 0 if result.wasSuccessful() else 1
    finally:
        shutil.rmtree(stubs_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora under tests/fuzz/corpus/ (committed).

  python3 tests/fuzz/make_seeds.py

rule_file_fuzzer: the bundled rule files and every tests/data/bad_rules file.
expression_fuzzer: every expression of the bundled rule files with its names
  renamed to the fuzzer's facts of the same type (numbers x y z, true/false
  a b, dates d e), plus a few hand-written ones; some followed by a NUL and
  value-selector bytes (see ReadValues in expression_fuzzer.cc).
request_fuzzer: a method byte and serialized requests, valid and invalid,
  encoded with protoc --encode from text format.
fhir_fuzzer: a selector byte (see fhir_fuzzer.cc) and a FHIR Bundle or NDJSON
  export, made from tests/data/fhir/eligible_patient.json: the patient as
  is, with equally recent results (one pair disagreeing, one told apart by
  `issued`), with a fact given both ways, cut short, and as an export of
  three patients of whom one is refused.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
RULE_FILES = [os.path.join(ROOT, "rules", f) for f in sorted(os.listdir(os.path.join(ROOT, "rules")))
              if f.endswith(".textproto")]


def function_names():
    """The expression functions, as service/engine/expression.h lists them."""
    with open(os.path.join(ROOT, "service", "engine", "expression.h")) as header:
        text = header.read()
    listing = re.search(r"kFunctionNames\[\] = \{([^}]*)\}", text)
    if listing is None:
        sys.exit("make_seeds.py: kFunctionNames not found in service/engine/expression.h")
    return set(re.findall(r'"([A-Za-z_0-9]+)"', listing.group(1)))


FUNCTIONS = function_names()


def fresh(target):
    path = os.path.join(CORPUS, target)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(directory, name, data):
    with open(os.path.join(directory, name), "wb") as out:
        out.write(data)


def rule_file_seeds():
    out = fresh("rule_file_fuzzer")
    for path in RULE_FILES:
        shutil.copy(path, os.path.join(out, os.path.basename(path)))
    bad = os.path.join(ROOT, "tests", "data", "bad_rules")
    for name in sorted(os.listdir(bad)):
        if name.endswith(".textproto"):
            shutil.copy(os.path.join(bad, name), os.path.join(out, "bad_" + name))


def unquote(text):
    return text.encode().decode("unicode_escape")


def expression_seeds():
    out = fresh("expression_fuzzer")
    expressions = set()
    for path in RULE_FILES:
        text = open(path, encoding="utf-8").read()
        types = {}
        for name, kind in re.findall(r'facts\s*\{\s*name:\s*"([^"]+)"\s*type:\s*(\w+)', text):
            types[name] = kind
        for name in re.findall(r'derived_values\s*\{\s*name:\s*"([^"]+)"', text):
            types.setdefault(name, "NUMBER")
        for name in re.findall(r'\bid:\s*"([^"]+)"', text):
            types.setdefault(name, "BOOL")
        for raw in re.findall(r'expression:\s*"((?:[^"\\]|\\.)*)"', text):
            counters = {"NUMBER": 0, "BOOL": 0, "DATE": 0}
            pools = {"NUMBER": "xyz", "BOOL": "ab", "DATE": "de"}
            renamed = {}

            def rename(match):
                word = match.group(0)
                if word in FUNCTIONS or word not in types:
                    return word
                if word not in renamed:
                    kind = types[word]
                    pool = pools[kind]
                    renamed[word] = pool[counters[kind] % len(pool)]
                    counters[kind] += 1
                return renamed[word]

            expressions.add(re.sub(r"[A-Za-z_][A-Za-z0-9_]*", rename, unquote(raw)))
    expressions |= {
        "a && b", "a || !b", "x / y > 1", "sqrt(x) < y", "if(a, x, y) >= 0",
        "d - e > 30", "d + 7 <= e", "beta_cdf(x, 1 + y, 1 + z) > 0.95",
        "binom_cdf(x, y, 0.3) < 0.05", "ln(x) + log10(y) + exp(z) > 0",
        "min(x, y) == max(y, x)", "floor(x) != ceil(x)", "abs(-x) ^ 2 < 1e300",
        "1e308 * 10 > x", "(x - y) * (y - z) / 0 == 1", "if(a, d, e) - d >= 0",
    }
    values = [
        b"",                                       # every fact unknown
        bytes([5, 6, 128] + [0x40, 0x59] + [0] * 6 + [1, 0, 1, 0, 0, 0x4b, 1, 0, 0, 0x4b, 0x20]),
        bytes([1, 2, 0, 2, 2, 0, 0]),              # inf, -inf, NaN, unknowns
        bytes([8, 10, 12, 1, 1, 3, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]),
    ]
    for i, expression in enumerate(sorted(expressions)):
        data = expression.encode()
        if i % 3 == 0:
            data += b"\0" + values[(i // 3) % len(values)]
        write(out, "expr-%03d" % i, data)


def protoc_encode(message, text):
    result = subprocess.run(
        ["protoc", "--encode=trialrules.v1." + message, "-I", os.path.join(ROOT, "proto"),
         os.path.join(ROOT, "proto", "trialrules", "v1", "service.proto")],
        input=text.encode(), capture_output=True, check=True)
    return result.stdout


def request_seeds():
    out = fresh("request_fuzzer")
    methods = ["CheckEligibility", "CheckWithdrawal", "EvaluateEscalation", "EvaluateStopping",
               "ListRuleSets", "GetRuleSet", "ValidateRuleSet", "ScreenPatients",
               "CompareVersions", "GradeEvents", "EvaluateTrial", "GetDecisionProof"]
    separator = b"\xff\xff\xff\xff"

    def fact_text(name, value):
        if isinstance(value, bool):
            return 'facts { name: "%s" boolean: %s }' % (name, "true" if value else "false")
        if isinstance(value, (int, float)):
            return 'facts { name: "%s" number: %r }' % (name, value)
        if isinstance(value, dict):
            return 'facts { name: "%s" number: %r unit: "%s" }' % (name, value["value"],
                                                                    value["unit"])
        return 'facts { name: "%s" date: "%s" }' % (name, value)

    patient = json.load(open(os.path.join(ROOT, "tests", "data", "facts",
                                          "eligible_patient.json")))["facts"]
    cohort = json.load(open(os.path.join(ROOT, "tests", "data", "facts",
                                         "cohort_one_of_three.json")))["facts"]
    all_facts = " ".join(fact_text(k, v) for k, v in patient.items())
    some_facts = " ".join(fact_text(k, v) for k, v in list(patient.items())[:6])
    cohort_facts = " ".join(fact_text(k, v) for k, v in cohort.items())
    evaluate = {
        "eligible": 'protocol_id: "NCT04094766" subject_ref: "S-1" site_id: "SITE1" ' + all_facts,
        "partial": 'protocol_id: "NCT04094766" version: "2.0" ' + some_facts,
        "cohort": 'protocol_id: "NCT04094766" version: "1.0" dose_level: "DL1" ' + cohort_facts,
        "unknown_fact": 'protocol_id: "NCT04094766" ignore_unknown_facts: true '
                        'facts { name: "nope" number: 1 } ' + some_facts,
        "out_of_range": 'protocol_id: "NCT04094766" facts { name: "karnofsky" number: 150 }',
        "bad_unit": 'protocol_id: "NCT04094766" '
                    'facts { name: "weight_kg" number: 1e308 unit: "g" }',
        "bad_date": 'protocol_id: "NCT04094766" facts { name: "assessment_date" date: "2021-02-29" }',
        "twice": 'protocol_id: "NCT04094766" facts { name: "karnofsky" number: 80 } '
                 'facts { name: "karnofsky" number: 90 }',
        "no_protocol": 'version: "1.0"',
        "bad_version": 'protocol_id: "NCT04094766" version: "9.9"',
        "old_date": 'protocol_id: "NCT04094766" facts { name: "assessment_date" date: "1999-01-01" }',
    }
    seeds = []
    for name, text in evaluate.items():
        encoded = protoc_encode("EvaluateRequest", text)
        for m in range(4):
            if name in ("eligible", "partial", "unknown_fact") or m == 0 or \
                    (name == "cohort" and m == 2):
                seeds.append(("%s-%s" % (methods[m], name), bytes([m]) + encoded))
    seeds.append(("ListRuleSets-all", bytes([4]) + protoc_encode("ListRuleSetsRequest", "")))
    seeds.append(("ListRuleSets-one", bytes([4]) + protoc_encode(
        "ListRuleSetsRequest", 'protocol_id: "NCT04094766"')))
    seeds.append(("GetRuleSet-1.0", bytes([5]) + protoc_encode(
        "GetRuleSetRequest", 'protocol_id: "NCT04094766" version: "1.0"')))
    seeds.append(("GetRuleSet-missing", bytes([5]) + protoc_encode(
        "GetRuleSetRequest", 'protocol_id: "X" version: ""')))
    small_rules = open(os.path.join(ROOT, "tests", "data", "bad_rules",
                                    "failing_test_case.textproto"), encoding="utf-8").read()
    seeds.append(("ValidateRuleSet-small", bytes([6]) + protoc_encode(
        "ValidateRuleSetRequest",
        'file_name: "x.textproto" text: %s' % json.dumps(small_rules))))
    seeds.append(("ValidateRuleSet-empty", bytes([6]) + protoc_encode("ValidateRuleSetRequest", "")))
    header = ('header { protocol_id: "NCT04094766" version: "1.0" site_id: "S" '
              'fact_names: "karnofsky" fact_names: "age_years" fact_names: "assessment_date" '
              'fact_names: "informed_consent" }')
    rows = ('patients { subject_ref: "P1" values { number: 80 } values { number: 30 } '
            'values { date: "2020-01-15" } values { boolean: true } } '
            'patients { subject_ref: "P2" values { number: 500 } } patients { subject_ref: "P3" }')
    seeds.append(("ScreenPatients-two", bytes([7]) + protoc_encode("ScreenRequest", header)
                  + separator + protoc_encode("ScreenRequest", rows)))
    seeds.append(("ScreenPatients-one", bytes([7]) + protoc_encode("ScreenRequest",
                                                                   header + " " + rows)))
    seeds.append(("ScreenPatients-noheader", bytes([7]) + protoc_encode("ScreenRequest", rows)))
    seeds.append(("ScreenPatients-units", bytes([7]) + protoc_encode(
        "ScreenRequest", 'header { protocol_id: "NCT04094766" fact_names: "weight_kg" '
                         'units: "g" ignore_unknown_facts: true fact_names: "x" } '
                         'patients { values { number: 70000 } values { boolean: false } }')))
    seeds.append(("ScreenPatients-compact", bytes([7]) + protoc_encode(
        "ScreenRequest", 'header { protocol_id: "NCT04094766" fact_names: "informed_consent" '
                         'fact_names: "assessment_date" fact_names: "karnofsky" } '
                         'patients { subject_ref: "A" numbers: 1 numbers: 80 dates: "2020-01-15" } '
                         'patients { subject_ref: "B" numbers: 2 numbers: nan dates: "" }')))
    compare = ('protocol_id: "NCT04094766" base_version: "1.0" candidate_version: "2.0" '
               'patients { subject_ref: "P1" %s } patients { subject_ref: "P2" '
               'facts { name: "karnofsky" number: 65 } }' % all_facts)
    seeds.append(("CompareVersions-two", bytes([8]) + protoc_encode("CompareRequest", compare)
                  + separator + protoc_encode("CompareRequest",
                                              'patients { subject_ref: "P3" %s }' % some_facts)))
    seeds.append(("CompareVersions-bad", bytes([8]) + protoc_encode(
        "CompareRequest", 'protocol_id: "NCT04094766" base_version: "1.0"')))
    crs = ('observations { name: "temp_c" number: 39.4 } '
           'observations { name: "fever_other_cause" boolean: false } '
           'observations { name: "hypotension" boolean: true } '
           'observations { name: "vasopressors" number: 1 } '
           'observations { name: "o2_device" text: "none" }')
    seeds.append(("GradeEvents-crs", bytes([9]) + protoc_encode(
        "GradeRequest", 'table_id: "astct-crs-2019" observation_sets { %s } '
                        'observation_sets { observations { name: "temp_c" number: 38.2 } }' % crs)))
    seeds.append(("GradeEvents-ctcae", bytes([9]) + protoc_encode(
        "GradeRequest", 'table_id: "ctcae-5.0" term: "blood_bilirubin_increased" '
                        'observation_sets { observations { name: "value" number: 1.8 } '
                        'observations { name: "uln" number: 1.2 } }')))
    trial = ('records { protocol_id: "NCT04094766" as_of_date: "2020-03-30" '
             'current_dose_level: "DL2" '
             'patients { subject_ref: "P01" dose_level: "DL1" infusion_date: "2020-01-10" '
             'events { term: "cytokine_release_syndrome" onset_date: "2020-01-12" '
             'resolution_date: "2020-01-15" attribution: "probable" %s } '
             'events { term: "febrile_neutropenia" grade: 3 onset_date: "2020-01-20" '
             'attribution: "possible" } } '
             'patients { subject_ref: "P04" dose_level: "DL2" infusion_date: "2020-02-20" } '
             'patients { subject_ref: "P05" dose_level: "DL2" infusion_date: "2020-03-02" '
             'events { term: "icans" grade: 3 onset_date: "2020-03-28" attribution: "probable" } } '
             'patients { subject_ref: "P06" dose_level: "DL2" infusion_date: "2020-02-25" '
             'death_date: "2020-03-20" } } site_id: "S"' % crs.replace("observations", "observations"))
    seeds.append(("EvaluateTrial-pending", bytes([10]) + protoc_encode("EvaluateTrialRequest", trial)))
    seeds.append(("EvaluateTrial-bad_dates", bytes([10]) + protoc_encode(
        "EvaluateTrialRequest",
        'records { protocol_id: "NCT04094766" as_of_date: "2020-03-30" current_dose_level: "DL1" '
        'patients { subject_ref: "P" dose_level: "DL1" infusion_date: "2020-03-01" '
        'events { term: "icans" grade: 9 onset_date: "2020-02-01" resolution_date: "9999-12-31" } } }')))
    seeds.append(("EvaluateTrial-empty", bytes([10]) + protoc_encode("EvaluateTrialRequest", "")))
    seeds.append(("GetDecisionProof-id", bytes([11]) + protoc_encode(
        "GetDecisionProofRequest", 'decision_id: "0123456789abcdef0123456789abcdef"')))
    seeds.append(("GetDecisionProof-bad_id", bytes([11]) + protoc_encode(
        "GetDecisionProofRequest", 'decision_id: "../../etc/passwd"')))
    # One patient's FHIR Bundle in place of facts: as its typed facts, with a
    # fact given both ways, and cut short.
    bundle = open(os.path.join(ROOT, "tests", "data", "fhir", "eligible_patient.json")).read()
    on_date = 'protocol_id: "NCT04094766" facts { name: "assessment_date" date: "2020-01-15" } '
    for name, text in [("fhir_bundle", on_date + "fhir_bundle_json: " + json.dumps(bundle)),
                       ("fhir_twice", on_date + 'facts { name: "karnofsky" number: 90 } '
                        "fhir_bundle_json: " + json.dumps(bundle)),
                       ("fhir_cut", on_date + "fhir_bundle_json: " + json.dumps(bundle[:300]))]:
        seeds.append(("CheckEligibility-" + name, bytes([0]) + protoc_encode("EvaluateRequest", text)))
    # The same patient as Bulk Data NDJSON in a screening stream: whole, with
    # a broken line and the caller's line numbers, and beside rows.
    lines = []
    for entry in json.loads(bundle)["entry"]:
        resource = dict(entry["resource"])
        if resource["resourceType"] == "Observation":
            resource["subject"] = {"reference": "Patient/p1"}
        lines.append(json.dumps(resource, separators=(",", ":")))
    ndjson = "\n".join(lines) + "\n"
    fhir_header = 'header { protocol_id: "NCT04094766" as_of_date: "2020-01-15" }'
    numbers = " ".join("fhir_line_numbers: %d" % (100 + i) for i in range(len(lines) + 1))
    for name, text in [("fhir_ndjson", "fhir_ndjson: " + json.dumps(ndjson)),
                       ("fhir_numbered", "fhir_ndjson: " + json.dumps(ndjson + "{not json\n")
                        + " " + numbers),
                       ("fhir_and_rows", "fhir_ndjson: " + json.dumps(ndjson)
                        + ' patients { subject_ref: "P" }')]:
        seeds.append(("ScreenPatients-" + name, bytes([7]) + protoc_encode(
            "ScreenRequest", fhir_header) + separator + protoc_encode("ScreenRequest", text)))
    # Bytes that are not a valid message of their type.
    seeds.append(("CheckEligibility-garbage", bytes([0]) + b"\x0a\xff\xff\x12"))
    seeds.append(("CheckEligibility-truncated", bytes([0]) + protoc_encode(
        "EvaluateRequest", evaluate["eligible"])[:-7]))
    for name, data in seeds:
        write(out, name, data)


# fhir_fuzzer's selector byte.
NDJSON, VERSION_2, IGNORE_UNKNOWN = 1, 2, 4


def date_selector(index):
    """kDates[index] of fhir_fuzzer.cc: 0 is 2020-01-15, the seeds' day."""
    return index << 3


def fhir_seeds():
    out = fresh("fhir_fuzzer")
    path = os.path.join(ROOT, "tests", "data", "fhir", "eligible_patient.json")
    bundle = json.load(open(path))
    # The file as written (indented) once; elsewhere compact, as most
    # servers send it, so that each input costs the fuzzer less.
    pretty = open(path, "rb").read()
    text = json.dumps(bundle, separators=(",", ":")).encode()

    def observation(oid, system, code, value, date="2020-01-10", **more):
        resource = {"resourceType": "Observation", "id": oid, "status": "final",
                    "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": system, "code": code}]},
                    "effectiveDateTime": date + "T08:00:00Z"}
        resource.update(value)
        resource.update(more)
        return resource

    def weight(kg, unit="kg"):
        return {"valueQuantity": {"value": kg, "unit": unit,
                                  "system": "http://unitsofmeasure.org", "code": unit}}

    def with_entries(*resources):
        copy = json.loads(json.dumps(bundle))
        copy["entry"] += [{"resource": r} for r in resources]
        return json.dumps(copy, separators=(",", ":")).encode()

    loinc, fact = "http://loinc.org", "urn:trialrules:fact"
    seeds = [
        ("bundle-eligible-v1", bytes([0]), pretty),
        ("bundle-eligible-v2", bytes([VERSION_2]), text),
        ("bundle-eligible-later", bytes([date_selector(2)]), text),
        ("bundle-eligible-before", bytes([VERSION_2 | date_selector(1)]), text),
        # Results of one day that disagree, with no `issued` to tell them
        # apart (refused); a pair that `issued` tells apart, assessed on a
        # day before the rest of the record.
        ("bundle-ambiguous", bytes([0]), with_entries(
            observation("w1", loinc, "29463-7", weight(70.5), "2020-01-15"),
            observation("w2", loinc, "29463-7", weight(71000, "g"), "2020-01-15"),
            observation("w3", loinc, "29463-7", weight(150, "[lb_av]"), "2020-01-15"))),
        ("bundle-issued", bytes([date_selector(1)]), with_entries(
            observation("l1", loinc, "10230-1",
                        {"valueQuantity": {"value": 55, "system": "http://unitsofmeasure.org",
                                           "code": "%"}}, "2019-11-30",
                        issued="2019-11-30T10:00:00Z"),
            observation("l2", loinc, "18043-0",
                        {"valueQuantity": {"value": 60, "system": "http://unitsofmeasure.org",
                                           "code": "%"}}, "2019-11-30",
                        issued="2019-11-30T11:30:00+01:00"))),
        ("bundle-ambiguous-later", bytes([date_selector(2)]), with_entries(
            observation("w1", loinc, "29463-7", weight(70.5), "2020-01-16"),
            observation("w2", loinc, "29463-7", weight(72), "2020-01-16"))),
        ("bundle-twice", bytes([VERSION_2]), with_entries(
            observation("c1", fact, "creatinine_mg_dl",
                        {"valueQuantity": {"value": 0.9, "system": "http://unitsofmeasure.org",
                                           "code": "mg/dL"}}))),
        ("bundle-unknown-ignored", bytes([IGNORE_UNKNOWN]), with_entries(
            observation("u1", fact, "not_a_fact", {"valueBoolean": True}),
            observation("u2", fact, "karnofsky", {"valueInteger": 80},
                        effectivePeriod={"start": "2020-01-01"}, status="preliminary"),
            {"resourceType": "Condition", "id": "c1"})),
        ("bundle-cut", bytes([0]), text[:300]),
        ("bundle-cut-deep", bytes([VERSION_2]), text[:len(text) * 2 // 3]),
        ("bundle-two-patients", bytes([0]),
         open(os.path.join(ROOT, "tests", "data", "fhir", "two_patients.json"), "rb").read()),
    ]

    # An export as a Bulk Data server writes it (Patient lines, then
    # Observation lines): p1 eligible, p2 refused (a weight in a unit the
    # binding does not take), p3 with its date given twice; then a line
    # that is not JSON, a blank one, and an Observation of no Patient. p2
    # and p3 have ten of p1's resources, to keep the input small.
    patients = []
    for n, pid in enumerate(["p1", "p2", "p3"]):
        lines = []
        for entry in bundle["entry"][:None if pid == "p1" else 10]:
            resource = json.loads(json.dumps(entry["resource"]).replace('"p1"', '"%s"' % pid)
                                  .replace("Patient/p1", "Patient/" + pid))
            if resource["resourceType"] == "Observation":
                resource["id"] = "%s-%s" % (pid, resource["id"])
            lines.append(resource)
        patients.append(lines)
    patients[1].append(dict(observation("p2-w", loinc, "29463-7", weight(70, "mg/dL")),
                            subject={"reference": "Patient/p2"}))
    patients[2].append(dict(observation("p3-d", fact, "immunophenotype_date",
                                        {"valueDateTime": "2019-12-02"}, "2020-01-15"),
                            subject={"reference": "Patient/p3"}))
    export = [json.dumps(p[0], separators=(",", ":")) for p in patients]
    export += [json.dumps(r, separators=(",", ":")) for p in patients for r in p[1:]]
    tail = ['{"resourceType":"Observation","id":"x"', "",
            json.dumps(dict(observation("q1", fact, "ecg_normal", {"valueBoolean": True}),
                            subject={"reference": "Patient/nobody"}), separators=(",", ":"))]
    ndjson = "\n".join(export).encode() + b"\n"
    seeds += [
        ("ndjson-three", bytes([NDJSON]), ndjson + "\n".join(tail).encode() + b"\n"),
        ("ndjson-three-v2", bytes([NDJSON | VERSION_2 | IGNORE_UNKNOWN]), ndjson),
        ("ndjson-one", bytes([NDJSON]), b"\n".join(
            json.dumps(r, separators=(",", ":")).encode() for r in patients[0])),
        ("ndjson-duplicate", bytes([NDJSON | date_selector(3)]),
         ndjson + export[0].encode() + b"\r\n"),
    ]
    for name, selector, data in seeds:
        write(out, name, selector + data)


def main():
    rule_file_seeds()
    expression_seeds()
    request_seeds()
    fhir_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("%s: %d seeds, %d bytes" % (target, len(files), size))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes an NCT04094766 facts file (tests/data/facts/*.json) as a FHIR R4
Bundle, through the bindings of rules/NCT04094766-v*.textproto: the
Patient's birthDate and gender, the labs by LOINC code (upper limits as
their reference ranges), every other fact as an Observation coded
urn:trialrules:fact. The assessment date is the request's, not the record's.

  tests/data/fhir/make_bundle.py tests/data/facts/eligible_patient.json \
      > tests/data/fhir/eligible_patient.json
"""
import json
import sys

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# fact: (LOINC code, canonical unit, upper-limit fact or None)
LABS = {
    "creatinine_mg_dl": ("2160-0", "mg/dL", "creatinine_uln_mg_dl"),
    "alt_u_l": ("1742-6", "U/L", "alt_uln_u_l"),
    "ast_u_l": ("1920-8", "U/L", "ast_uln_u_l"),
    "bilirubin_mg_dl": ("1975-2", "mg/dL", None),
    "lvef_pct": ("10230-1", "%", None),
    "weight_kg": ("29463-7", "kg", None),
    "pb_blast_pct": ("26446-5", "%", None),
}
UNITS = {"crcl_ml_min": "mL/min", "steroid_mg_per_day": "mg/d", "steroid_days": "d",
         "bm_blast_pct": "%", "dlco_pct_pred": "%", "fev1_pct_pred": "%",
         "creatinine_uln_mg_dl": "mg/dL", "alt_uln_u_l": "U/L", "ast_uln_u_l": "U/L"}


def quantity(value, unit):
    if isinstance(value, dict):
        value, unit = value["value"], value["unit"]
    out = {"value": value}
    if unit:
        out.update(system=UCUM, code=unit)
    return out


def main():
    facts = json.load(open(sys.argv[1]))["facts"]
    date = facts.pop("assessment_date")
    patient = {"resourceType": "Patient", "id": "p1"}
    observations = []

    def observation(system, code, value):
        resource = {"resourceType": "Observation", "id": f"o{len(observations) + 1}",
                    "status": "final", "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": system, "code": code}]},
                    "effectiveDateTime": date + "T08:00:00Z"}
        resource.update(value)
        observations.append(resource)
        return resource

    uln_facts = {lab[2] for name, lab in LABS.items() if lab[2] and name in facts}
    for name, value in facts.items():
        if name == "age_years":
            year = int(date[:4]) - int(value)
            patient["birthDate"] = f"{year:04d}{date[4:]}"
        elif name == "sex_female":
            patient["gender"] = "female" if value else "male"
        elif name in LABS:
            code, unit, uln = LABS[name]
            resource = observation(LOINC, code, {"valueQuantity": quantity(value, unit)})
            if uln in facts:
                resource["referenceRange"] = [{"high": quantity(facts[uln], unit)}]
        elif name in uln_facts:
            continue
        elif name == "karnofsky":
            observation(LOINC, "89243-0", {"valueInteger": value})
        elif name == "pregnancy_test_negative":
            answer = "LA6577-6" if value else "LA6576-8"
            observation(LOINC, "2106-3", {"valueCodeableConcept": {
                "coding": [{"system": LOINC, "code": answer}]}})
        elif isinstance(value, bool):
            observation("urn:trialrules:fact", name, {"valueBoolean": value})
        elif isinstance(value, str):
            observation("urn:trialrules:fact", name, {"valueDateTime": value})
        else:
            observation("urn:trialrules:fact", name,
                        {"valueQuantity": quantity(value, UNITS.get(name, ""))})
    entries = [{"fullUrl": "urn:uuid:p1", "resource": patient}]
    entries += [{"resource": r} for r in observations]
    json.dump({"resourceType": "Bundle", "type": "collection", "entry": entries},
              sys.stdout, indent=1)
    sys.stdout.write("\n")


main()

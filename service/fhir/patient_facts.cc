#include "service/fhir/patient_facts.h"

#include <algorithm>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace trialrules {
namespace fhir_internal {

namespace dom = simdjson::dom;
namespace pb = ::trialrules::v1;

absl::Status Refuse(const Resource& resource, absl::string_view field, absl::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat(resource.Name(), ": ", field, " ", text));
}

absl::StatusOr<std::optional<std::string>> StringField(const Resource& resource,
                                                       dom::object object,
                                                       absl::string_view path,
                                                       std::string_view key) {
  dom::element element;
  if (object[key].get(element) != simdjson::SUCCESS) return std::nullopt;
  std::string_view text;
  if (element.get_string().get(text) != simdjson::SUCCESS) {
    return Refuse(resource, path, "must be a string");
  }
  return std::string(text);
}

namespace {

constexpr absl::string_view kUcum = "http://unitsofmeasure.org";

// Debian's Abseil has its own string_view; simdjson hands out std's.
absl::string_view View(std::string_view text) { return {text.data(), text.size()}; }

// An object member; none when absent, an error when it is not an object.
absl::StatusOr<std::optional<dom::object>> ObjectField(const Resource& resource,
                                                       dom::object object,
                                                       absl::string_view path,
                                                       std::string_view key) {
  dom::element element;
  if (object[key].get(element) != simdjson::SUCCESS) return std::nullopt;
  dom::object nested;
  if (element.get_object().get(nested) != simdjson::SUCCESS) {
    return Refuse(resource, path, "must be an object");
  }
  return nested;
}

absl::StatusOr<std::optional<dom::array>> ArrayField(const Resource& resource,
                                                     dom::object object, absl::string_view path,
                                                     std::string_view key) {
  dom::element element;
  if (object[key].get(element) != simdjson::SUCCESS) return std::nullopt;
  dom::array array;
  if (element.get_array().get(array) != simdjson::SUCCESS) {
    return Refuse(resource, path, "must be an array");
  }
  return array;
}

// A string member as it is in the document (valid while its parser is);
// none when absent. `path()` names it in a refusal, built only then: a
// path such as "code.coding[0].system" costs an allocation per field read.
template <typename Path>
absl::StatusOr<std::optional<std::string_view>> TextField(const Resource& resource,
                                                          dom::object object, const Path& path,
                                                          std::string_view key) {
  dom::element element;
  if (object[key].get(element) != simdjson::SUCCESS) return std::nullopt;
  std::string_view text;
  if (element.get_string().get(text) != simdjson::SUCCESS) {
    return Refuse(resource, path(), "must be a string");
  }
  return text;
}

// The codings of a CodeableConcept member: (system, code) pairs, viewing
// the document. Most concepts have one or two.
using CodingList = absl::InlinedVector<std::pair<std::string_view, std::string_view>, 2>;
absl::StatusOr<CodingList> Codings(
    const Resource& resource, dom::object concept_object, absl::string_view path) {
  CodingList codings;
  absl::StatusOr<std::optional<dom::array>> array =
      ArrayField(resource, concept_object, absl::StrCat(path, ".coding"), "coding");
  if (!array.ok()) return array.status();
  if (!array->has_value()) return codings;
  size_t i = 0;
  for (dom::element element : **array) {
    auto at = [&](absl::string_view field) {
      return absl::StrCat(path, ".coding[", i, "]", field);
    };
    dom::object coding;
    if (element.get_object().get(coding) != simdjson::SUCCESS) {
      return Refuse(resource, at(""), "must be an object");
    }
    absl::StatusOr<std::optional<std::string_view>> system =
        TextField(resource, coding, [&] { return at(".system"); }, "system");
    if (!system.ok()) return system.status();
    absl::StatusOr<std::optional<std::string_view>> code =
        TextField(resource, coding, [&] { return at(".code"); }, "code");
    if (!code.ok()) return code.status();
    codings.emplace_back(system->value_or(""), code->value_or(""));
    ++i;
  }
  return codings;
}

// A Quantity's number and UCUM code ("" when it has none).
struct Quantity {
  double value = 0;
  std::string unit;
};

absl::StatusOr<Quantity> QuantityOf(const Resource& resource, dom::object object,
                                    absl::string_view path) {
  Quantity quantity;
  dom::element value;
  if (object["value"].get(value) != simdjson::SUCCESS ||
      value.get_double().get(quantity.value) != simdjson::SUCCESS) {
    return Refuse(resource, absl::StrCat(path, ".value"), "must be a number");
  }
  auto at = [&](absl::string_view field) { return absl::StrCat(path, field); };
  absl::StatusOr<std::optional<std::string_view>> code =
      TextField(resource, object, [&] { return at(".code"); }, "code");
  if (!code.ok()) return code.status();
  absl::StatusOr<std::optional<std::string_view>> system =
      TextField(resource, object, [&] { return at(".system"); }, "system");
  if (!system.ok()) return system.status();
  // The display `unit` is free text: only the UCUM code says what the
  // number measures.
  if (code->has_value()) {
    if (View(system->value_or("")) != kUcum) {
      return Refuse(resource, at(".system"),
                    absl::StrCat("\"", View(system->value_or("")), "\" is not ", kUcum,
                                 " (the unit's code must be UCUM)"));
    }
    quantity.unit = std::string(**code);
  }
  return quantity;
}

// Whether `fact` takes a value in `unit` (its own or an accepted unit).
bool TakesUnit(const FactSpec& fact, const std::string& unit) {
  return unit == fact.unit ||
         std::any_of(fact.accepted_units.begin(), fact.accepted_units.end(),
                     [&](const FactSpec::AlternativeUnit& u) { return u.unit == unit; });
}

std::string UnitList(const std::vector<std::string>& units) {
  std::vector<std::string> quoted;
  for (const std::string& unit : units) quoted.push_back(absl::StrCat("\"", unit, "\""));
  return absl::StrJoin(quoted, ", ");
}

std::vector<std::string> UnitsOf(const FactSpec& fact) {
  std::vector<std::string> units = {fact.unit};
  for (const FactSpec::AlternativeUnit& u : fact.accepted_units) units.push_back(u.unit);
  return units;
}

// The instant of "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)", the form
// exports write, computed directly; none for any other text, which
// absl::ParseTime then reads (and refuses with its message). ParseTime
// costs a time-zone lookup and a format interpretation per Observation;
// on this form both give the same absl::Time.
std::optional<absl::Time> CommonInstant(std::string_view text) {
  auto digit = [&](size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  auto two = [&](size_t i) { return (text[i] - '0') * 10 + (text[i + 1] - '0'); };
  if (text.size() < 20 || text[10] != 'T' || text[13] != ':' || text[16] != ':' ||
      !digit(11) || !digit(12) || !digit(14) || !digit(15) || !digit(17) || !digit(18)) {
    return std::nullopt;
  }
  const absl::StatusOr<DayNumber> day = ParseIsoDate(View(text.substr(0, 10)));
  if (!day.ok()) return std::nullopt;
  const int hour = two(11), minute = two(14), second = two(17);
  // A leap second (60) is ParseTime's to normalise.
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  size_t at = 19;
  int64_t nanos = 0;
  if (text[at] == '.') {
    size_t digits = 0;
    for (++at; at < text.size() && digit(at); ++at, ++digits) nanos = nanos * 10 + (text[at] - '0');
    // Past nanoseconds ParseTime rounds to its own resolution.
    if (digits == 0 || digits > 9) return std::nullopt;
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset = 0;  // seconds east of UTC
  if (at + 1 == text.size() && text[at] == 'Z') {
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') &&
             digit(at + 1) && digit(at + 2) && text[at + 3] == ':' && digit(at + 4) &&
             digit(at + 5)) {
    const int offset_hours = two(at + 1), offset_minutes = two(at + 4);
    if (offset_hours > 23 || offset_minutes > 59) return std::nullopt;
    offset = (text[at] == '-' ? -1 : 1) * (offset_hours * 3600 + offset_minutes * 60);
  } else {
    return std::nullopt;
  }
  const int64_t seconds =
      int64_t{*day} * 86400 + hour * 3600 + minute * 60 + second - offset;
  return absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
}

bool SameValue(const Candidate& a, const Candidate& b) {
  return a.value == b.value && a.unit == b.unit;
}

}  // namespace

std::string Resource::Reference() const { return absl::StrCat(type, "/", id); }

std::string Resource::Name() const {
  const std::string place =
      ndjson_line ? absl::StrCat("line ", index) : absl::StrCat("entry[", index, "]");
  return absl::StrCat(place, " (", type, id.empty() ? "" : "/", id, ")");
}

PatientFactsReader::PatientFactsReader(const RuleSet& rules, const BundleOptions& options)
    : rules_(rules), options_(options) {
  DeclareSources();
  sources_ = declared_;
  source_count_ = declared_.size();
  fact_source_.assign(rules_.facts().size(), -1);
  is_range_.assign(declared_.size(), false);
  for (int range : range_source_) {
    if (range >= 0) is_range_[range] = true;
  }
  highs_.reserve(range_source_.size());
  std::vector<int> by_name(rules_.facts().size());
  for (size_t f = 0; f < by_name.size(); ++f) by_name[f] = static_cast<int>(f);
  std::sort(by_name.begin(), by_name.end(), [&](int a, int b) {
    return rules_.facts()[a].name < rules_.facts()[b].name;
  });
  name_order_.assign(by_name.size(), 0);
  for (size_t i = 0; i < by_name.size(); ++i) {
    name_order_[by_name[i]] =
        i > 0 && rules_.facts()[by_name[i]].name == rules_.facts()[by_name[i - 1]].name
            ? name_order_[by_name[i - 1]]
            : static_cast<int>(i);
  }
}

absl::StatusOr<BundleFacts> PatientFactsReader::Read(
    const Resource& patient, absl::string_view patient_full_url,
    absl::Span<const Resource* const> observations) {
  patient_ = &patient;
  patient_full_url_.assign(patient_full_url.data(), patient_full_url.size());
  // The last patient's sources are emptied rather than freed: their
  // candidates' storage serves the next.
  for (size_t s = 0; s < source_count_; ++s) {
    sources_[s].candidates.clear();
    if (s >= declared_.size()) fact_source_[sources_[s].fact] = -1;
  }
  source_count_ = declared_.size();
  ignored_.clear();
  if (absl::Status status = ReadPatient(patient); !status.ok()) return status;
  for (const Resource* observation : observations) {
    if (absl::Status status = ReadObservation(*observation); !status.ok()) return status;
  }
  return Select();
}

void PatientFactsReader::DeclareSources() {
  const auto& bindings = rules_.definition().fhir_bindings;
  for (int b = 0; b < static_cast<int>(bindings.size()); ++b) {
    const pb::FhirBinding& binding = bindings[b];
    const int fact = rules_.FindFact(binding.fact());
    binding_source_.push_back(static_cast<int>(declared_.size()));
    std::string how;
    switch (binding.source_case()) {
      case pb::FhirBinding::kPatientBirthDate: how = "Patient.birthDate"; break;
      case pb::FhirBinding::kPatientGender: how = "Patient.gender"; break;
      default: {
        std::vector<std::string> codes;
        for (const pb::FhirCoding& code : binding.observation().codes()) {
          codes.push_back(absl::StrCat(code.system(), "|", code.code()));
          codes_[code.system()][code.code()] = b;
        }
        how = absl::StrJoin(codes, " or ");
      }
    }
    declared_.push_back({fact, hows_.emplace_back(how), b, {}});
    range_source_.push_back(-1);
    if (binding.has_observation() && !binding.observation().reference_range_high().empty()) {
      range_source_.back() = static_cast<int>(declared_.size());
      declared_.push_back({rules_.FindFact(binding.observation().reference_range_high()),
                           hows_.emplace_back(absl::StrCat("referenceRange.high of ", how)), b,
                           {}});
    }
  }
}

int PatientFactsReader::FactSource(int fact) {
  int& source = fact_source_[fact];
  if (source < 0) {
    source = static_cast<int>(source_count_);
    if (sources_.size() == source_count_) {
      sources_.push_back({fact, kFactCodeSystem, -1, {}});
    } else {
      // Emptied by Read.
      Source& reused = sources_[source_count_];
      reused.fact = fact;
      reused.how = kFactCodeSystem;
      reused.binding = -1;
    }
    ++source_count_;
  }
  return source;
}

absl::Status PatientFactsReader::ReadPatient(const Resource& patient) {
  const auto& bindings = rules_.definition().fhir_bindings;
  for (int b = 0; b < static_cast<int>(bindings.size()); ++b) {
    Candidate candidate;
    candidate.resource = &patient;
    if (bindings[b].has_patient_birth_date()) {
      absl::StatusOr<std::optional<std::string>> birth =
          StringField(patient, patient.object, "birthDate", "birthDate");
      if (!birth.ok()) return birth.status();
      // A birthDate of only a year or a month gives no age in completed
      // years: the fact stays missing.
      if (!birth->has_value() || (*birth)->size() < 10) continue;
      absl::StatusOr<DayNumber> day = ParseIsoDate(**birth);
      if (!day.ok()) return Refuse(patient, "birthDate", day.status().message());
      candidate.value = static_cast<double>(CompletedYears(**birth));
      candidate.unit = rules_.facts()[sources_[binding_source_[b]].fact].unit;
    } else if (bindings[b].has_patient_gender()) {
      absl::StatusOr<std::optional<std::string>> gender =
          StringField(patient, patient.object, "gender", "gender");
      if (!gender.ok()) return gender.status();
      if (*gender == "female") {
        candidate.value = true;
      } else if (*gender == "male") {
        candidate.value = false;
      } else {
        continue;
      }
    } else {
      continue;
    }
    sources_[binding_source_[b]].candidates.push_back(std::move(candidate));
  }
  return absl::OkStatus();
}

// Completed years from `birth` (YYYY-MM-DD, valid) to the assessment
// date. Comparing (month, day) makes a 29 February birthday fall on
// 1 March in other years.
int PatientFactsReader::CompletedYears(const std::string& birth) const {
  const std::string on = FormatIsoDate(options_.assessment_date);
  const int years = std::stoi(on.substr(0, 4)) - std::stoi(birth.substr(0, 4));
  return on.substr(5) < birth.substr(5) ? years - 1 : years;
}

absl::Status PatientFactsReader::CheckSubject(const Resource& observation) {
  absl::StatusOr<std::optional<dom::object>> subject =
      ObjectField(observation, observation.object, "subject", "subject");
  if (!subject.ok()) return subject.status();
  if (!subject->has_value()) return absl::OkStatus();
  absl::StatusOr<std::optional<std::string_view>> reference = TextField(
      observation, **subject, [] { return std::string("subject.reference"); }, "reference");
  if (!reference.ok()) return reference.status();
  if (!reference->has_value()) return absl::OkStatus();
  const Resource& patient = *patient_;
  const std::string_view type = **reference;
  if ((type.size() == patient.type.size() + 1 + patient.id.size() &&
       type.substr(0, patient.type.size()) == patient.type && type[patient.type.size()] == '/' &&
       type.substr(patient.type.size() + 1) == patient.id) ||
      (!patient_full_url_.empty() && type == patient_full_url_)) {
    return absl::OkStatus();
  }
  return Refuse(observation, "subject.reference",
                absl::StrCat("\"", View(**reference), "\" is not the Bundle's patient (",
                             patient.Reference(), ")"));
}

absl::Status PatientFactsReader::ReadObservation(const Resource& observation) {
  if (absl::Status status = CheckSubject(observation); !status.ok()) return status;
  absl::StatusOr<std::optional<std::string>> status =
      StringField(observation, observation.object, "status", "status");
  if (!status.ok()) return status.status();
  if (*status != "final" && *status != "amended" && *status != "corrected") {
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<dom::object>> code =
      ObjectField(observation, observation.object, "code", "code");
  if (!code.ok()) return code.status();
  if (!code->has_value()) return Refuse(observation, "code", "is required");
  absl::StatusOr<CodingList> codings =
      Codings(observation, **code, "code");
  if (!codings.ok()) return codings.status();
  // Which source the codings select: one binding, or one fact by name.
  int source = -1;
  for (const auto& [system, value] : *codings) {
    int found = -1;
    if (View(system) == kFactCodeSystem) {
      const int fact = rules_.FindFact(View(value));
      if (fact < 0) {
        if (!options_.ignore_unknown_facts) {
          return Refuse(observation, "code",
                        absl::StrCat("names \"", View(value), "\", which is not a fact of ",
                                     rules_.protocol_id(), " ", rules_.version()));
        }
        ignored_.insert(std::string(value));
        continue;
      }
      found = FactSource(fact);
    } else if (const auto in = codes_.find(system); in != codes_.end()) {
      if (const auto it = in->second.find(value); it != in->second.end()) {
        found = binding_source_[it->second];
      }
    }
    if (found < 0 || found == source) continue;
    if (source >= 0) {
      return Refuse(observation, "code",
                    absl::StrCat("has codings of two facts (", FactName(source), " and ",
                                 FactName(found), ")"));
    }
    source = found;
  }
  if (source < 0) return absl::OkStatus();

  Candidate candidate;
  candidate.resource = &observation;
  absl::StatusOr<std::optional<DayNumber>> date = DateOf(observation);
  if (!date.ok()) return date.status();
  if (!date->has_value()) {
    return Refuse(observation, "effectiveDateTime",
                  "(or effectivePeriod.start) is required to judge its date");
  }
  candidate.date = **date;
  if (candidate.date > options_.assessment_date) return absl::OkStatus();
  const Source& into = sources_[source];
  if (into.binding >= 0) {
    const pb::FhirObservationSource& bound =
        rules_.definition().fhir_bindings[into.binding].observation();
    if (bound.has_max_age_days() &&
        options_.assessment_date - candidate.date > bound.max_age_days()) {
      return absl::OkStatus();
    }
  }
  absl::StatusOr<std::optional<std::string_view>> issued = TextField(
      observation, observation.object, [] { return std::string("issued"); }, "issued");
  if (!issued.ok()) return issued.status();
  if (issued->has_value()) {
    candidate.issued = CommonInstant(**issued);
    if (!candidate.issued.has_value()) {
      absl::Time time;
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, View(**issued), &time, &error)) {
        return Refuse(observation, "issued",
                      absl::StrCat("\"", View(**issued), "\" is not an instant: ", error));
      }
      candidate.issued = time;
    }
  }
  absl::StatusOr<bool> has_value = ValueOf(observation, into, &candidate);
  if (!has_value.ok()) return has_value.status();
  // An Observation without a value (a dataAbsentReason) gives no result.
  if (!*has_value) return absl::OkStatus();
  sources_[source].candidates.push_back(std::move(candidate));
  return absl::OkStatus();
}

const std::string& PatientFactsReader::FactName(int source) const {
  return rules_.facts()[sources_[source].fact].name;
}

absl::StatusOr<std::optional<DayNumber>> PatientFactsReader::DateOf(const Resource& observation) {
  absl::string_view field = "effectiveDateTime";
  auto path = [&] { return std::string(field); };
  absl::StatusOr<std::optional<std::string_view>> text =
      TextField(observation, observation.object, path, "effectiveDateTime");
  if (!text.ok()) return text.status();
  if (!text->has_value()) {
    absl::StatusOr<std::optional<dom::object>> period =
        ObjectField(observation, observation.object, "effectivePeriod", "effectivePeriod");
    if (!period.ok()) return period.status();
    if (!period->has_value()) return std::nullopt;
    field = "effectivePeriod.start";
    text = TextField(observation, **period, path, "start");
    if (!text.ok()) return text.status();
    if (!text->has_value()) return std::nullopt;
  }
  // The date as written: no time-zone conversion.
  absl::StatusOr<DayNumber> day = ParseIsoDate(View(**text).substr(0, 10));
  if (!day.ok()) {
    return Refuse(observation, field,
                  absl::StrCat("\"", View(**text), "\" does not start with a date YYYY-MM-DD"));
  }
  return *day;
}

// Fills the candidate's value from the Observation's value[x]; false when
// it has none.
absl::StatusOr<bool> PatientFactsReader::ValueOf(const Resource& observation, const Source& source,
                             Candidate* candidate) {
  const FactSpec& fact = rules_.facts()[source.fact];
  std::string_view key;
  dom::element value;
  for (auto [member_key, member_value] : observation.object) {
    if (member_key.substr(0, 5) == "value") {
      key = member_key;
      value = member_value;
      break;
    }
  }
  if (key.empty()) return false;
  const pb::FhirObservationSource* bound =
      source.binding >= 0
          ? &rules_.definition().fhir_bindings[source.binding].observation()
          : nullptr;
  auto takes = [&](pb::FhirValueType type) {
    if (bound == nullptr) {
      switch (type) {
        case pb::QUANTITY:
        case pb::INTEGER: return fact.type == ValueType::kNumber;
        case pb::BOOLEAN: return fact.type == ValueType::kBool;
        default: return false;
      }
    }
    return std::find(bound->value_types().begin(), bound->value_types().end(), type) !=
           bound->value_types().end();
  };
  const std::string field(View(key));
  if (key == "valueQuantity" && takes(pb::QUANTITY)) {
    dom::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
      return Refuse(observation, field, "must be an object");
    }
    absl::StatusOr<Quantity> quantity = QuantityOf(observation, object, field);
    if (!quantity.ok()) return quantity.status();
    const bool bound_units = bound != nullptr && !bound->units().empty();
    if (bound_units ? std::find(bound->units().begin(), bound->units().end(),
                                quantity->unit) == bound->units().end()
                    : !TakesUnit(fact, quantity->unit)) {
      // Listed only to refuse: most quantities are in a unit taken.
      std::vector<std::string> units = UnitsOf(fact);
      if (bound_units) units.assign(bound->units().begin(), bound->units().end());
      return Refuse(observation, absl::StrCat(field, ".code"),
                    absl::StrCat("\"", quantity->unit, "\" is not a unit ", fact.name,
                                 " takes (", UnitList(units), ")"));
    }
    candidate->value = quantity->value;
    candidate->unit = quantity->unit;
    return true;
  }
  if (key == "valueInteger" && takes(pb::INTEGER)) {
    int64_t number = 0;
    if (value.get_int64().get(number) != simdjson::SUCCESS) {
      return Refuse(observation, field, "must be an integer");
    }
    candidate->value = static_cast<double>(number);
    candidate->unit = fact.unit;
    return true;
  }
  if (key == "valueBoolean" && takes(pb::BOOLEAN)) {
    bool flag = false;
    if (value.get_bool().get(flag) != simdjson::SUCCESS) {
      return Refuse(observation, field, "must be true or false");
    }
    candidate->value = flag;
    return true;
  }
  if (key == "valueCodeableConcept" && takes(pb::CODEABLE_CONCEPT)) {
    dom::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
      return Refuse(observation, field, "must be an object");
    }
    absl::StatusOr<CodingList> codings =
        Codings(observation, object, field);
    if (!codings.ok()) return codings.status();
    // A code the binding does not map (e.g. "indeterminate") leaves the
    // fact missing, even when an older result had one it maps.
    for (const auto& [system, code] : *codings) {
      for (const pb::FhirConceptValue& mapped : bound->concept_values()) {
        if (mapped.system() == system && mapped.code() == code) {
          candidate->value = mapped.value();
          return true;
        }
      }
    }
    return true;
  }
  if (key == "valueDateTime" && bound == nullptr && fact.type == ValueType::kDate) {
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS || text.size() < 10 ||
        !ParseIsoDate(View(text.substr(0, 10))).ok()) {
      return Refuse(observation, field, "must start with a date YYYY-MM-DD");
    }
    candidate->value = std::string(text.substr(0, 10));
    return true;
  }
  return Refuse(observation, field,
                absl::StrCat("is not a value ", fact.name, " takes from ", source.how));
}

// The candidate that wins among `candidates`: the latest date, then the
// latest `issued`. A candidate without `issued` ties with any other, so
// it stays among the winners unless a later date beats it.
absl::StatusOr<const Candidate*> PatientFactsReader::Winner(const Source& source) const {
  const std::vector<Candidate>& all = source.candidates;
  if (all.empty()) return nullptr;
  if (all.size() == 1) return &all[0];
  DayNumber latest = all[0].date;
  for (const Candidate& c : all) latest = std::max(latest, c.date);
  absl::InlinedVector<const Candidate*, 4> on_latest;
  for (const Candidate& c : all) {
    if (c.date == latest) on_latest.push_back(&c);
  }
  absl::InlinedVector<const Candidate*, 4> winners;
  for (const Candidate* c : on_latest) {
    const bool beaten = c->issued.has_value() &&
                        std::any_of(on_latest.begin(), on_latest.end(),
                                    [&](const Candidate* other) {
                                      return other->issued.has_value() &&
                                             *other->issued > *c->issued;
                                    });
    if (!beaten) winners.push_back(c);
  }
  for (const Candidate* other : winners) {
    if (!SameValue(*winners[0], *other)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fact \"", rules_.facts()[source.fact].name, "\": ",
          winners[0]->resource->Reference(), " and ", other->resource->Reference(),
          " are equally recent (", FormatIsoDate(latest), ") and give different values"));
    }
  }
  return winners[0];
}

absl::StatusOr<Candidate> PatientFactsReader::RangeHigh(const Candidate& selected, const Source& range) const {
  const Resource& observation = *selected.resource;
  Candidate high;
  high.resource = &observation;
  high.date = selected.date;
  absl::StatusOr<std::optional<dom::array>> ranges =
      ArrayField(observation, observation.object, "referenceRange", "referenceRange");
  if (!ranges.ok()) return ranges.status();
  if (!ranges->has_value()) return high;
  size_t i = 0;
  for (dom::element element : **ranges) {
    const std::string at = absl::StrCat("referenceRange[", i++, "]");
    dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      return Refuse(observation, at, "must be an object");
    }
    absl::StatusOr<std::optional<dom::object>> quantity_object =
        ObjectField(observation, object, absl::StrCat(at, ".high"), "high");
    if (!quantity_object.ok()) return quantity_object.status();
    if (!quantity_object->has_value()) continue;
    absl::StatusOr<Quantity> quantity =
        QuantityOf(observation, **quantity_object, absl::StrCat(at, ".high"));
    if (!quantity.ok()) return quantity.status();
    const FactSpec& fact = rules_.facts()[range.fact];
    if (!TakesUnit(fact, quantity->unit)) {
      return Refuse(observation, absl::StrCat(at, ".high.code"),
                    absl::StrCat("\"", quantity->unit, "\" is not a unit ", fact.name,
                                 " takes (", UnitList(UnitsOf(fact)), ")"));
    }
    high.value = quantity->value;
    high.unit = quantity->unit;
    return high;
  }
  return high;
}

absl::StatusOr<BundleFacts> PatientFactsReader::Select() {
  std::vector<Given>& given = given_;
  given.clear();
  highs_.clear();
  for (size_t s = 0; s < source_count_; ++s) {
    const Source& source = sources_[s];
    if (s < is_range_.size() && is_range_[s]) {
      continue;  // given with its binding's winner below
    }
    absl::StatusOr<const Candidate*> winner = Winner(source);
    if (!winner.ok()) return winner.status();
    if (*winner == nullptr) continue;
    if ((*winner)->value.has_value()) {
      given.push_back({source.fact, *winner, source.how});
    }
    if (source.binding >= 0 && range_source_[source.binding] >= 0) {
      const Source& range = sources_[range_source_[source.binding]];
      absl::StatusOr<Candidate> high = RangeHigh(**winner, range);
      if (!high.ok()) return high.status();
      if (high->value.has_value()) {
        // Never reallocated (reserved for every range): given points into it.
        highs_.push_back(*std::move(high));
        given.push_back({range.fact, &highs_.back(), range.how});
      }
    }
  }
  // By name, each fact's sources in the order given.
  // An insertion sort: a couple of dozen facts, and stable without the
  // buffer std::stable_sort allocates.
  for (size_t i = 1; i < given.size(); ++i) {
    const Given moving = given[i];
    size_t j = i;
    for (; j > 0 && name_order_[given[j - 1].fact] > name_order_[moving.fact]; --j) {
      given[j] = given[j - 1];
    }
    given[j] = moving;
  }
  BundleFacts out;
  out.facts.reserve(given.size());
  out.provenance.reserve(given.size());
  for (size_t i = 0; i < given.size();) {
    size_t end = i + 1;
    while (end < given.size() && name_order_[given[end].fact] == name_order_[given[i].fact]) {
      ++end;
    }
    const std::string& name = rules_.facts()[given[i].fact].name;
    if (end - i > 1) {
      std::vector<std::string> named;
      for (size_t g = i; g < end; ++g) {
        named.push_back(
            absl::StrCat(given[g].candidate->resource->Reference(), " (", given[g].how, ")"));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("fact \"", name, "\" is given more than one way: ",
                       absl::StrJoin(named, " and "), "; a fact has one source"));
    }
    const Candidate& c = *given[i].candidate;
    out.facts.push_back({name, *c.value, c.unit});
    out.provenance.emplace_back(name, c.resource->Reference());
    i = end;
  }
  out.ignored_unknown.assign(ignored_.begin(), ignored_.end());
  return out;
}

}  // namespace fhir_internal
}  // namespace trialrules

#include "client/fhir_export.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"

namespace trialrules {
namespace {

constexpr std::string_view kPatientPrefix = "Patient/";

struct Line {
  size_t offset = 0;
  size_t length = 0;
  uint64_t number = 0;
};

struct PatientLines {
  std::vector<Line> lines;
  size_t bytes = 0;
};

// Whose line `json` is: its patient's id, empty when it belongs to no
// patient (or cannot be read), or `skip` for other resource types.
std::string_view PatientOf(simdjson::ondemand::parser& parser, const char* json, size_t length,
                           size_t capacity, bool* skip) {
  *skip = false;
  simdjson::ondemand::document document;
  std::string_view type;
  if (parser.iterate(json, length, capacity).get(document) != simdjson::SUCCESS ||
      document["resourceType"].get_string().get(type) != simdjson::SUCCESS) {
    return {};
  }
  if (type == "Patient") {
    std::string_view id;
    if (document["id"].get_string().get(id) != simdjson::SUCCESS) return {};
    return id;
  }
  if (type != "Observation") {
    *skip = true;
    return {};
  }
  std::string_view reference;
  if (document["subject"]["reference"].get_string().get(reference) != simdjson::SUCCESS ||
      reference.substr(0, kPatientPrefix.size()) != kPatientPrefix) {
    return {};
  }
  return reference.substr(kPatientPrefix.size());
}

void Append(const std::string& text, const Line& line, ExportBatch* batch) {
  batch->lines.push_back(absl::string_view(text.data() + line.offset, line.length));
  batch->line_numbers.push_back(line.number);
  batch->bytes += line.length + 1;
}

}  // namespace

void ExportBatch::WriteNdjson(std::string* out) const {
  out->clear();
  out->reserve(bytes);
  for (absl::string_view line : lines) {
    out->append(line.data(), line.size());
    out->push_back('\n');
  }
}

absl::StatusOr<std::string> ReadNdjsonExport(const std::string& path) {
  std::error_code error;
  std::vector<std::string> files;
  if (std::filesystem::is_directory(path, error)) {
    for (const auto& entry : std::filesystem::directory_iterator(path, error)) {
      if (entry.path().extension() == ".ndjson") files.push_back(entry.path().string());
    }
    if (error) return absl::NotFoundError(absl::StrCat("cannot list ", path));
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  // Read in place into one buffer: an export may be gigabytes, and each
  // pass over fresh memory costs its page faults.
  size_t total = 0;
  for (const std::string& file : files) {
    const uintmax_t size = std::filesystem::file_size(file, error);
    if (error) return absl::NotFoundError(absl::StrCat("cannot read ", file));
    total += size + 1;
  }
  std::string text;
  text.resize(total + simdjson::SIMDJSON_PADDING);
  size_t used = 0;
  for (const std::string& file : files) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot read ", file));
    ssize_t got = 0;
    while (used < total && (got = ::read(fd, text.data() + used, total - used)) > 0) used += got;
    ::close(fd);
    if (got < 0) return absl::NotFoundError(absl::StrCat("cannot read ", file));
    if (used > 0 && text[used - 1] != '\n') text[used++] = '\n';
  }
  // The padding stays in the capacity.
  text.resize(used);
  return text;
}

ExportBatches BatchExportByPatient(const std::string& text, size_t max_patients,
                                   size_t max_bytes) {
  simdjson::ondemand::parser parser;
  std::vector<PatientLines> patients;
  absl::flat_hash_map<std::string, size_t> patient_of;
  std::vector<Line> loose;
  // Lines are read in place: the string's capacity holds simdjson's padding
  // past its last line.
  const size_t capacity = std::max(text.capacity(), text.size());
  const bool padded = capacity >= text.size() + simdjson::SIMDJSON_PADDING;
  std::string copy;
  size_t offset = 0;
  uint64_t number = 0;
  while (offset < text.size()) {
    size_t end = text.find('\n', offset);
    if (end == std::string::npos) end = text.size();
    const Line line{offset, end - offset, ++number};
    offset = end + 1;
    const std::string_view view(text.data() + line.offset, line.length);
    if (absl::StripAsciiWhitespace(absl::string_view(view.data(), view.size())).empty()) continue;
    bool skip = false;
    std::string_view id;
    if (padded) {
      id = PatientOf(parser, view.data(), view.size(), capacity - line.offset, &skip);
    } else {
      copy.assign(view);
      copy.reserve(copy.size() + simdjson::SIMDJSON_PADDING);
      id = PatientOf(parser, copy.data(), copy.size(), copy.capacity(), &skip);
    }
    if (skip) continue;
    if (id.empty()) {
      loose.push_back(line);
      continue;
    }
    const auto [it, added] = patient_of.try_emplace(std::string(id), patients.size());
    if (added) patients.emplace_back();
    PatientLines& patient = patients[it->second];
    patient.lines.push_back(line);
    patient.bytes += line.length + 1;
  }

  ExportBatches out;
  out.patients = patients.size();
  out.batches.emplace_back();
  for (const Line& line : loose) {
    if (out.batches.back().bytes + line.length + 1 > max_bytes && out.batches.back().bytes > 0) {
      out.batches.emplace_back();
    }
    Append(text, line, &out.batches.back());
  }
  for (const PatientLines& patient : patients) {
    ExportBatch* batch = &out.batches.back();
    if (!batch->lines.empty() && (batch->patients >= max_patients ||
                                  batch->bytes + patient.bytes > max_bytes)) {
      batch = &out.batches.emplace_back();
    }
    for (const Line& line : patient.lines) Append(text, line, batch);
    ++batch->patients;
  }
  if (out.batches.back().lines.empty()) out.batches.pop_back();
  return out;
}

}  // namespace trialrules

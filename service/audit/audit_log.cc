#include "service/util/number_text.h"
#include "service/audit/audit_log.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/audit/canonical_facts.h"
#include "service/util/sha256.h"
#include "service/util/json.h"

namespace trialrules {

namespace {

void AppendHex64(uint64_t value, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, value >>= 4) out[i] = kHex[value & 0xf];
}

// "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC). The part up to the seconds is
// formatted once per second and thread: a record is written per decision.
void AppendRecordTime(absl::Time time, std::string* out) {
  thread_local int64_t cached_second = std::numeric_limits<int64_t>::min();
  thread_local std::string cached_text;
  const int64_t micros = absl::ToUnixMicros(time);
  const int64_t second = micros >= 0 ? micros / 1000000 : (micros - 999999) / 1000000;
  if (second != cached_second) {
    cached_second = second;
    cached_text = absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second),
                                   absl::UTCTimeZone());
  }
  int64_t fraction = micros - second * 1000000;
  char digits[8] = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
  for (int i = 6; i >= 1; --i, fraction /= 10) digits[i] = static_cast<char>('0' + fraction % 10);
  out->append(cached_text);
  out->append(digits, sizeof digits);
}

}  // namespace

std::string NewDecisionId() {
  static const uint64_t process_prefix = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }();
  static std::atomic<uint64_t> counter{0};
  std::string id(32, '0');
  AppendHex64(process_prefix, id.data());
  AppendHex64(++counter, id.data() + 16);
  return id;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         bool include_facts) {
  // Read and write: a torn last line is found by reading it. "-": the
  // standard output the process was given. Not by opening
  // /dev/stdout: in a container that is a pipe or FIFO owned by the
  // runtime's user, which a non-root process may not open again.
  const int fd = path == "-" ? ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0)
                             : ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("audit log ", path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat file {};
  const bool regular = ::fstat(fd, &file) == 0 && S_ISREG(file.st_mode);
  uint64_t torn_tails = 0;
  char last = '\n';
  if (regular && file.st_size > 0 && ::pread(fd, &last, 1, file.st_size - 1) == 1 &&
      last != '\n') {
    // Not O_APPEND for standard output redirected with `>`: write at the end.
    if (::pwrite(fd, "\n", 1, file.st_size) != 1 || ::fdatasync(fd) != 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      return absl::UnavailableError(absl::StrCat(
          "audit log ", path, ": its last line is cut short and a new line cannot be started: ",
          reason));
    }
    ::lseek(fd, 0, SEEK_END);
    torn_tails = 1;
    std::cerr << "audit log " << path << ": its last line was cut short (no newline at byte "
              << file.st_size << "); it is kept as it is and records go on from the next line\n";
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, include_facts, regular, torn_tails));
}

AuditLog::AuditLog(std::string path, int fd, bool include_facts, bool sync,
                   uint64_t torn_tails)
    : path_(std::move(path)),
      include_facts_(include_facts),
      fd_(fd),
      sync_(sync),
      torn_tails_(torn_tails) {
  if (sync_) writer_ = std::thread([this] { WriterLoop(); });
}

AuditLog::~AuditLog() {
  if (writer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    queued_.notify_all();
    writer_.join();  // writes what was queued first
  }
  ::close(fd_);
}

void AuditLog::Append(std::string lines, Done done) {
  std::unique_lock<std::mutex> lock(mutex_);
  queued_bytes_ += lines;
  queued_done_.push_back(std::move(done));
  if (sync_) {
    lock.unlock();
    queued_.notify_one();
    return;
  }
  if (writing_) return;  // the writer in progress takes these too
  WriteQueued(lock);
}

void AuditLog::WriteQueued(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  std::string bytes;
  std::vector<Done> callbacks;
  while (!queued_done_.empty()) {
    bytes.swap(queued_bytes_);
    callbacks.swap(queued_done_);
    lock.unlock();
    const absl::Status status = Write(bytes);
    for (Done& callback : callbacks) callback(status);
    bytes.clear();
    callbacks.clear();
    lock.lock();
  }
  writing_ = false;
}

void AuditLog::WriterLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    queued_.wait(lock, [this] { return closing_ || !queued_done_.empty(); });
    if (queued_done_.empty()) return;  // closing, nothing left
    WriteQueued(lock);
  }
}



void AuditLog::AppendFactsFields(const DecisionRecord& record, std::string* out) const {
  AppendFactsFields(*record.rule_set, *record.facts, out);
}

void AuditLog::AppendFactsFields(const RuleSet& rule_set, const FactValues& facts,
                                 std::string* out) const {
  // The canonical facts go into a per-thread buffer, whose capacity stays.
  thread_local std::string canonical_facts;
  canonical_facts.clear();
  AppendCanonicalFacts(rule_set, facts, &canonical_facts);
  out->append(",\"facts_sha256\":\"");
  AppendSha256Hex(canonical_facts, out);
  out->push_back('"');
  if (include_facts_) {
    out->append(",\"facts\":");
    out->append(canonical_facts);
  }
}

// Ids, versions and protocol ids are identifiers (checked at load): nothing
// in them needs escaping. Subject and site references come from callers.
void AuditLog::AppendLine(const DecisionRecord& record, std::string* out) const {
  const RuleSet& rule_set = *record.rule_set;
  absl::StrAppend(out, "{\"decision_id\":\"", record.decision_id, "\",\"time\":\"");
  AppendRecordTime(record.time, out);
  absl::StrAppend(out, "\",\"method\":\"", record.method, "\",\"protocol_id\":\"",
                  rule_set.protocol_id(), "\",\"version\":\"", rule_set.version(),
                  "\",\"sha256\":\"", rule_set.sha256(), "\",\"subject_ref\":");
  AppendJsonQuoted(record.subject_ref, out);
  out->append(",\"site_id\":");
  AppendJsonQuoted(record.site_id, out);
  absl::StrAppend(out, ",\"decision\":\"", DecisionName(record.evaluation->decision),
                  "\",\"rules\":{");
  bool first = true;
  for (const RuleResult& result : record.evaluation->rules) {
    absl::StrAppend(out, first ? "\"" : ",\"", rule_set.rules()[result.rule].id,
                    "\":\"", OutcomeName(result.outcome), "\"");
    first = false;
  }
  out->push_back('}');
  AppendFactsFields(record, out);
  out->append("}\n");
}

std::string AuditLog::FormatLines(const std::vector<DecisionRecord>& records) const {
  std::string bytes;
  bytes.reserve(records.size() * 700);
  for (const DecisionRecord& record : records) AppendLine(record, &bytes);
  return bytes;
}

std::string AuditLog::FormatBatch(const std::vector<DecisionRecord>& records) const {
  if (records.empty()) return "";
  const DecisionRecord& first = records.front();
  const RuleSet& rule_set = *first.rule_set;
  std::string bytes;
  bytes.reserve(256 + records.size() * (include_facts_ ? 1200 : 200));
  bytes.append("{\"time\":\"");
  AppendRecordTime(first.time, &bytes);
  absl::StrAppend(&bytes, "\",\"method\":\"", first.method, "\",\"protocol_id\":\"",
                  rule_set.protocol_id(), "\",\"version\":\"", rule_set.version(),
                  "\",\"sha256\":\"", rule_set.sha256(), "\",\"site_id\":");
  AppendJsonQuoted(first.site_id, &bytes);
  bytes.append(",\"rule_ids\":[");
  bool first_rule = true;
  for (const RuleResult& result : first.evaluation->rules) {
    absl::StrAppend(&bytes, first_rule ? "\"" : ",\"", rule_set.rules()[result.rule].id,
                    "\"");
    first_rule = false;
  }
  bytes += "],\"decisions\":[";
  for (size_t i = 0; i < records.size(); ++i) {
    const DecisionRecord& record = records[i];
    absl::StrAppend(&bytes, i == 0 ? "" : ",", "{\"decision_id\":\"", record.decision_id,
                    "\",\"subject_ref\":");
    AppendJsonQuoted(record.subject_ref, &bytes);
    absl::StrAppend(&bytes, ",\"decision\":\"", DecisionName(record.evaluation->decision),
                    "\",\"outcomes\":\"");
    for (const RuleResult& result : record.evaluation->rules) {
      bytes += OutcomeName(result.outcome)[0];
    }
    bytes += '"';
    AppendFactsFields(record, &bytes);
    bytes += '}';
  }
  bytes += "]}\n";
  return bytes;
}

std::string AuditLog::FormatGrading(const GradingRecord& record) const {
  const DecisionTableSet& tables = *record.tables;
  const DecisionTable& table = *record.table;
  std::string out;
  absl::StrAppend(&out, "{\"decision_id\":\"", record.decision_id, "\",\"time\":\"");
  AppendRecordTime(record.time, &out);
  absl::StrAppend(&out, "\",\"method\":\"GradeEvents\",\"table_id\":\"", tables.table_id(),
                  "\",\"version\":\"", tables.version(), "\",\"sha256\":\"", tables.sha256(),
                  "\",\"term\":\"", table.term, "\",\"subject_ref\":");
  AppendJsonQuoted(record.subject_ref, &out);
  out.append(",\"site_id\":");
  AppendJsonQuoted(record.site_id, &out);
  out.append(",\"gradings\":[");
  for (size_t i = 0; i < record.results.size(); ++i) {
    const TableResult& result = record.results[i];
    out.append(i == 0 ? "{" : ",{");
    if (result.output) {
      absl::StrAppend(&out, "\"grade\":", ShortestNumber(*result.output));
    } else {
      absl::StrAppend(&out, "\"grade\":null,\"grade_min\":", ShortestNumber(result.min),
                      ",\"grade_max\":", ShortestNumber(result.max));
    }
    out.append(",\"rows\":{");
    for (size_t r = 0; r < result.rows.size(); ++r) {
      absl::StrAppend(&out, r == 0 ? "\"" : ",\"", table.rows[result.rows[r].rule].id, "\":\"",
                      OutcomeName(result.rows[r].outcome), "\"");
    }
    out.push_back('}');
    AppendFactsFields(*table.rules, result.inputs, &out);
    out.push_back('}');
  }
  out.append("]}\n");
  return out;
}

namespace {

absl::string_view TruthLetter(v1::Truth truth) {
  return truth == v1::TRUTH_TRUE ? "T" : truth == v1::TRUTH_FALSE ? "F" : "U";
}

}  // namespace

std::string AuditLog::FormatTrial(const TrialRecord& record) const {
  const RuleSet& rule_set = *record.rule_set;
  const v1::TrialEvaluation& evaluation = *record.evaluation;
  const std::string records = CanonicalRecords(*record.records);
  std::string out;
  absl::StrAppend(&out, "{\"decision_id\":\"", record.decision_id, "\",\"time\":\"");
  AppendRecordTime(record.time, &out);
  absl::StrAppend(&out, "\",\"method\":\"EvaluateTrial\",\"protocol_id\":\"",
                  rule_set.protocol_id(), "\",\"version\":\"", rule_set.version(),
                  "\",\"sha256\":\"", rule_set.sha256(), "\",\"site_id\":");
  AppendJsonQuoted(record.site_id, &out);
  absl::StrAppend(&out, ",\"as_of_date\":\"", evaluation.as_of_date(),
                  "\",\"current_dose_level\":");
  AppendJsonQuoted(evaluation.escalation().dose_level(), &out);
  // Per patient: DLT and evaluable as T/F/U, then each event's criterion
  // ("D2"), "-" for no DLT or "?" for pending, in record order.
  out.append(",\"patients\":[");
  for (int p = 0; p < evaluation.patients_size(); ++p) {
    const v1::PatientAssessment& patient = evaluation.patients(p);
    out.append(p == 0 ? "[" : ",[");
    AppendJsonQuoted(patient.subject_ref(), &out);
    absl::StrAppend(&out, ",\"", TruthLetter(patient.dlt()), TruthLetter(patient.evaluable()),
                    "\",\"");
    for (int e = 0; e < patient.events_size(); ++e) {
      const v1::EventAssessment& event = patient.events(e);
      if (e > 0) out.push_back(' ');
      out.append(event.dlt() == v1::TRUTH_TRUE    ? event.criterion()
                 : event.dlt() == v1::TRUTH_FALSE ? "-"
                                                  : "?");
    }
    out.append("\"]");
  }
  const v1::EscalationOutcome& escalation = evaluation.escalation();
  absl::StrAppend(&out, "],\"escalation\":{\"design\":\"", escalation.design(),
                  "\",\"decision\":\"", escalation.decision(), "\",\"pending\":[");
  for (int i = 0; i < escalation.pending_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonQuoted(escalation.pending(i).subject_ref(), &out);
  }
  out.append("]");
  if (escalation.has_boin()) {
    absl::StrAppend(&out, ",\"design_sha256\":\"", escalation.boin().design_sha256(), "\"");
  }
  const v1::StoppingOutcome& stopping = evaluation.stopping();
  absl::StrAppend(&out, "},\"stopping\":{\"decision\":\"", stopping.decision(), "\",\"rules\":{");
  for (int r = 0; r < stopping.rules_size(); ++r) {
    absl::StrAppend(&out, r == 0 ? "\"" : ",\"", stopping.rules(r).id(), "\":\"",
                    TruthLetter(stopping.rules(r).outcome()), "\"");
  }
  absl::StrAppend(&out, "}},\"records_sha256\":\"");
  AppendSha256Hex(records, &out);
  out.push_back('"');
  if (include_facts_) absl::StrAppend(&out, ",\"records\":", records);
  out.append("}\n");
  return out;
}

// One writer at a time (Append's writing_).
absl::Status AuditLog::Write(const std::string& bytes) {
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      // Take back the part of this batch that was written: no torn line may
      // stay in front of the records that follow. The file ends with it (we
      // are its only writer, one write at a time), so it starts `written`
      // bytes before the end. (A pipe cannot seek: nothing to take back.)
      // The offset goes back too: standard output redirected with `>` is a
      // file without O_APPEND, where the next write would leave a hole.
      const off_t end = written > 0 ? ::lseek(fd_, 0, SEEK_END) : -1;
      if (end >= static_cast<off_t>(written)) {
        const off_t start = end - static_cast<off_t>(written);
        while (::ftruncate(fd_, start) != 0 && errno == EINTR) {
        }
        ::lseek(fd_, start, SEEK_SET);
      }
      return Failed("write", error);
    }
    written += static_cast<size_t>(n);
  }
  if (sync_) {
    int synced;
    while ((synced = ::fdatasync(fd_)) != 0 && errno == EINTR) {
    }
    if (synced != 0) return Failed("sync", errno);
  }
  if (!healthy_.exchange(true)) {
    std::cerr << "audit log " << path_ << ": writing again\n";
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Failed(absl::string_view step, int error) {
  const std::string reason = std::strerror(error);
  last_errno_ = error;
  ++failures_;
  if (healthy_.exchange(false)) {
    std::cerr << "audit log " << path_ << ": " << step << " failed (" << reason
              << "); refusing decisions until it can be written\n";
  }
  return absl::UnavailableError(
      absl::StrCat("the decision could not be recorded in the audit log (", step, ": ", reason,
                   "); no answer is given without its record"));
}

void AuditLog::Probe() {
  const int error = last_errno_.load();
  if (healthy_.load() || (error != ENOSPC && error != EDQUOT)) return;
  // Only a regular file's file system tells its free space (/dev/full, a
  // pipe: only a write can tell).
  struct stat file {};
  if (::fstat(fd_, &file) != 0 || !S_ISREG(file.st_mode)) return;
  struct statvfs space {};
  constexpr uint64_t kEnough = 1 << 20;
  if (::fstatvfs(fd_, &space) == 0 &&
      static_cast<uint64_t>(space.f_bavail) * space.f_frsize >= kEnough &&
      !healthy_.exchange(true)) {
    std::cerr << "audit log " << path_ << ": space available again; accepting decisions\n";
  }
}

}  // namespace trialrules

#include "service/audit/audit_log.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/engine/sha256.h"
#include "service/util/json.h"

namespace trialrules {

std::string NewDecisionId() {
  static const uint64_t process_prefix = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }();
  static std::atomic<uint64_t> counter{0};
  return absl::StrFormat("%016x%016x", process_prefix, ++counter);
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         bool include_facts) {
  // "-": the standard output the process was given. Not by opening
  // /dev/stdout: in a container that is a pipe or FIFO owned by the
  // runtime's user, which a non-root process may not open again.
  const int fd = path == "-" ? ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0)
                             : ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("audit log ", path, ": cannot open: ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, include_facts));
}

AuditLog::AuditLog(std::string path, int fd, bool include_facts)
    : path_(std::move(path)), include_facts_(include_facts), fd_(fd) {}

AuditLog::~AuditLog() { ::close(fd_); }

void AuditLog::Append(std::string lines, Done done) {
  std::unique_lock<std::mutex> lock(mutex_);
  queued_bytes_ += lines;
  queued_done_.push_back(std::move(done));
  if (writing_) return;  // the writer in progress takes these too
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



void AuditLog::AppendLine(const DecisionRecord& record, absl::string_view time,
                          std::string* out) const {
  const RuleSet& rule_set = *record.rule_set;
  const std::string canonical_facts = rule_set.CanonicalFacts(*record.facts);
  absl::StrAppend(
      out, "{\"decision_id\":\"", record.decision_id, "\",\"time\":\"", time,
      "\",\"method\":\"", record.method, "\",\"protocol_id\":\"",
      rule_set.protocol_id(), "\",\"version\":\"", rule_set.version(),
      "\",\"sha256\":\"", rule_set.sha256(), "\",\"subject_ref\":",
      JsonQuote(record.subject_ref), ",\"site_id\":", JsonQuote(record.site_id),
      ",\"decision\":\"", DecisionName(record.evaluation->decision), "\",\"rules\":{");
  // Ids, versions and protocol ids are identifiers (checked at load):
  // nothing in them needs escaping.
  bool first = true;
  for (const RuleResult& result : record.evaluation->rules) {
    absl::StrAppend(out, first ? "\"" : ",\"", rule_set.rules()[result.rule].id,
                    "\":\"", OutcomeName(result.outcome), "\"");
    first = false;
  }
  absl::StrAppend(out, "},\"facts_sha256\":\"", Sha256Hex(canonical_facts), "\"");
  if (include_facts_) absl::StrAppend(out, ",\"facts\":", canonical_facts);
  out->append("}\n");
}

std::string AuditLog::FormatLines(const std::vector<DecisionRecord>& records) const {
  std::string bytes;
  bytes.reserve(records.size() * 700);
  absl::Time formatted_time = absl::InfinitePast();
  std::string time;
  for (const DecisionRecord& record : records) {
    if (record.time != formatted_time) {
      formatted_time = record.time;
      time = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", record.time, absl::UTCTimeZone());
    }
    AppendLine(record, time, &bytes);
  }
  return bytes;
}

std::string AuditLog::FormatBatch(const std::vector<DecisionRecord>& records) const {
  if (records.empty()) return "";
  const DecisionRecord& first = records.front();
  const RuleSet& rule_set = *first.rule_set;
  std::string bytes;
  bytes.reserve(256 + records.size() * (include_facts_ ? 1200 : 200));
  absl::StrAppend(
      &bytes, "{\"time\":\"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", first.time, absl::UTCTimeZone()),
      "\",\"method\":\"", first.method, "\",\"protocol_id\":\"", rule_set.protocol_id(),
      "\",\"version\":\"", rule_set.version(), "\",\"sha256\":\"", rule_set.sha256(),
      "\",\"site_id\":", JsonQuote(first.site_id), ",\"rule_ids\":[");
  bool first_rule = true;
  for (const RuleResult& result : first.evaluation->rules) {
    absl::StrAppend(&bytes, first_rule ? "\"" : ",\"", rule_set.rules()[result.rule].id,
                    "\"");
    first_rule = false;
  }
  bytes += "],\"decisions\":[";
  for (size_t i = 0; i < records.size(); ++i) {
    const DecisionRecord& record = records[i];
    const std::string canonical_facts = rule_set.CanonicalFacts(*record.facts);
    absl::StrAppend(&bytes, i == 0 ? "" : ",", "{\"decision_id\":\"", record.decision_id,
                    "\",\"subject_ref\":", JsonQuote(record.subject_ref),
                    ",\"decision\":\"", DecisionName(record.evaluation->decision),
                    "\",\"outcomes\":\"");
    for (const RuleResult& result : record.evaluation->rules) {
      bytes += OutcomeName(result.outcome)[0];
    }
    absl::StrAppend(&bytes, "\",\"facts_sha256\":\"", Sha256Hex(canonical_facts), "\"");
    if (include_facts_) absl::StrAppend(&bytes, ",\"facts\":", canonical_facts);
    bytes += '}';
  }
  bytes += "]}\n";
  return bytes;
}

// One writer at a time (Append's writing_).
absl::Status AuditLog::Write(const std::string& bytes) {
  // Where this batch starts, to take back a partial write: no torn line may
  // stay in front of the records that follow. (-1 for a pipe: nothing to
  // take back, a pipe write of a batch either fails or goes through.)
  const off_t start = ::lseek(fd_, 0, SEEK_END);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      const std::string reason = std::strerror(error);
      last_errno_ = error;
      if (written > 0 && start >= 0) {
        while (::ftruncate(fd_, start) != 0 && errno == EINTR) {
        }
      }
      ++failures_;
      if (healthy_.exchange(false)) {
        std::cerr << "audit log " << path_ << ": write failed (" << reason
                  << "); refusing decisions until it can be written\n";
      }
      return absl::UnavailableError(absl::StrCat(
          "the decision could not be recorded in the audit log (", reason,
          "); no answer is given without its record"));
    }
    written += static_cast<size_t>(n);
  }
  if (!healthy_.exchange(true)) {
    std::cerr << "audit log " << path_ << ": writing again\n";
  }
  return absl::OkStatus();
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

#include "service/audit/audit_log.h"

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
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("audit log ", path, ": cannot open: ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, include_facts));
}

AuditLog::AuditLog(std::string path, int fd, bool include_facts)
    : path_(std::move(path)), include_facts_(include_facts), fd_(fd) {}

AuditLog::~AuditLog() { ::close(fd_); }

std::string AuditLog::FormatLine(const DecisionRecord& record) const {
  const RuleSet& rule_set = *record.rule_set;
  const std::string canonical_facts = rule_set.CanonicalFacts(*record.facts);
  std::string line = absl::StrCat(
      "{\"decision_id\":", JsonQuote(record.decision_id),
      ",\"time\":", JsonQuote(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", record.time,
                                               absl::UTCTimeZone())),
      ",\"method\":", JsonQuote(record.method),
      ",\"protocol_id\":", JsonQuote(rule_set.protocol_id()),
      ",\"version\":", JsonQuote(rule_set.version()),
      ",\"sha256\":", JsonQuote(rule_set.sha256()),
      ",\"subject_ref\":", JsonQuote(record.subject_ref),
      ",\"site_id\":", JsonQuote(record.site_id),
      ",\"decision\":", JsonQuote(DecisionName(record.evaluation->decision)),
      ",\"rules\":{");
  bool first = true;
  for (const RuleResult& result : record.evaluation->rules) {
    absl::StrAppend(&line, first ? "" : ",", JsonQuote(rule_set.rules()[result.rule].id),
                    ":\"", OutcomeName(result.outcome), "\"");
    first = false;
  }
  absl::StrAppend(&line, "},\"facts_sha256\":\"", Sha256Hex(canonical_facts), "\"");
  if (include_facts_) absl::StrAppend(&line, ",\"facts\":", canonical_facts);
  line += "}";
  return line;
}

absl::Status AuditLog::Record(const std::vector<DecisionRecord>& records) {
  std::string bytes;
  for (const DecisionRecord& record : records) {
    absl::StrAppend(&bytes, FormatLine(record), "\n");
  }
  return Write(bytes);
}

absl::Status AuditLog::Write(const std::string& bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = n < 0 ? std::strerror(errno) : "nothing written";
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

}  // namespace trialrules

#include "service/audit/log_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "simdjson.h"

namespace trialrules {

std::vector<std::string> LogFiles(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::vector<std::pair<uint64_t, std::string>> rotated;
  bool live = false;
  if (DIR* listing = ::opendir(dir.empty() ? "/" : dir.c_str())) {
    while (const dirent* entry = ::readdir(listing)) {
      absl::string_view name = entry->d_name;
      if (name == base) live = true;
      if (!absl::ConsumePrefix(&name, base) || !absl::ConsumePrefix(&name, ".") ||
          name.size() != 20 || !std::all_of(name.begin(), name.end(), absl::ascii_isdigit)) {
        continue;
      }
      uint64_t first = 0;
      if (absl::SimpleAtoi(name, &first)) {
        rotated.emplace_back(first, absl::StrCat(slash == std::string::npos ? "" : dir + "/",
                                                 entry->d_name));
      }
    }
    ::closedir(listing);
  }
  std::sort(rotated.begin(), rotated.end());
  std::vector<std::string> files;
  for (auto& [first, file] : rotated) files.push_back(std::move(file));
  if (live) files.push_back(path);
  return files;
}

namespace {

// A log file mapped read-only: a verifier reads gigabytes once, in order,
// and a copy into memory would cost more than the checks.
class MappedFile {
 public:
  static absl::StatusOr<MappedFile> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
    }
    struct stat file {};
    MappedFile mapped;
    if (::fstat(fd, &file) == 0 && file.st_size > 0) {
      void* data = ::mmap(nullptr, file.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data != MAP_FAILED) {
        ::madvise(data, file.st_size, MADV_SEQUENTIAL);
        mapped.data_ = static_cast<const char*>(data);
        mapped.size_ = static_cast<size_t>(file.st_size);
      }
    }
    ::close(fd);
    if (mapped.data_ == nullptr && file.st_size > 0) {
      return absl::UnavailableError(absl::StrCat(path, ": cannot map: ", std::strerror(errno)));
    }
    return mapped;
  }
  MappedFile(MappedFile&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(other.size_) {}
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }
  absl::string_view text() const { return absl::string_view(data_, size_); }

 private:
  MappedFile() = default;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

absl::Status ForEachLogLine(const std::string& path,
                            const std::function<absl::Status(const LogLine&)>& visit) {
  const std::vector<std::string> files = LogFiles(path);
  if (files.empty()) return absl::NotFoundError(absl::StrCat("audit log ", path, ": no such file"));
  for (const std::string& file : files) {
    absl::StatusOr<MappedFile> bytes = MappedFile::Open(file);
    if (!bytes.ok()) return bytes.status();
    absl::string_view rest = bytes->text();
    LogLine line;
    line.file = &file;
    while (!rest.empty()) {
      const size_t end = rest.find('\n');
      ++line.line_number;
      line.ends_with_newline = end != absl::string_view::npos;
      line.text = rest.substr(0, end);
      if (absl::Status s = visit(line); !s.ok()) return s;
      rest.remove_prefix(line.ends_with_newline ? end + 1 : rest.size());
    }
  }
  return absl::OkStatus();
}

namespace {

// One parser per thread: a parser keeps its buffers between documents.
simdjson::dom::parser& Parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

}  // namespace

absl::StatusOr<LogEnvelope> ParseLogLine(absl::string_view line) {
  simdjson::dom::element root;
  if (const simdjson::error_code error = Parser().parse(line.data(), line.size()).get(root)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not valid JSON (", simdjson::error_message(error), ")"));
  }
  if (!root.is_object()) return absl::InvalidArgumentError("not a JSON object");
  LogEnvelope envelope;
  absl::string_view rest = line;
  if (absl::ConsumePrefix(&rest, "{\"leaf_index\":")) {
    envelope.indexed = true;
    const size_t digits = rest.find(',');
    if (digits == absl::string_view::npos ||
        !absl::SimpleAtoi(rest.substr(0, digits), &envelope.leaf_index) ||
        (digits > 1 && rest[0] == '0')) {
      return absl::InvalidArgumentError("leaf_index is not a whole number");
    }
    rest.remove_prefix(digits);
    if (!absl::ConsumePrefix(&rest, ",\"prev_leaf_hash\":\"")) {
      return absl::InvalidArgumentError("no prev_leaf_hash after leaf_index");
    }
    const size_t quote = rest.find('"');
    envelope.prev_leaf_hash = rest.substr(0, quote);
    rest.remove_prefix(quote == absl::string_view::npos ? rest.size() : quote + 1);
    if (!absl::ConsumePrefix(&rest, ",\"record\":")) {
      return absl::InvalidArgumentError("no record after prev_leaf_hash");
    }
  } else if (!absl::ConsumePrefix(&rest, "{\"record\":")) {
    return absl::InvalidArgumentError("neither leaf_index nor record comes first");
  }
  constexpr absl::string_view kTime = ",\"time\":\"";
  const size_t time = rest.rfind(kTime);
  if (time == absl::string_view::npos || !absl::EndsWith(rest, "\"}")) {
    return absl::InvalidArgumentError("no time after the record");
  }
  envelope.record = rest.substr(0, time);
  envelope.time = rest.substr(time + kTime.size(), rest.size() - time - kTime.size() - 2);
  if (envelope.record.empty() || envelope.record.front() != '{' ||
      envelope.record.back() != '}') {
    return absl::InvalidArgumentError("the record is not a JSON object");
  }
  return envelope;
}

std::string RecordString(absl::string_view record, absl::string_view key) {
  simdjson::dom::element root;
  if (Parser().parse(record.data(), record.size()).get(root)) return "";
  std::string_view value;
  if (root[std::string_view(key.data(), key.size())].get(value)) return "";
  return std::string(value);
}

}  // namespace trialrules

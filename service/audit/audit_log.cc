#include "service/audit/audit_log.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <limits>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/audit/log_files.h"
#include "service/util/file.h"
#include "service/util/sha256.h"

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

// The bytes after the last newline before `end`, read backwards from the
// end of the file, not the whole log.
std::string LastLine(int fd, off_t end) {
  std::string line;
  char chunk[65536];
  while (end > 0) {
    const off_t start = std::max<off_t>(0, end - static_cast<off_t>(sizeof chunk));
    const ssize_t n = ::pread(fd, chunk, end - start, start);
    if (n <= 0) break;
    const absl::string_view text(chunk, static_cast<size_t>(n));
    const size_t newline = text.rfind('\n');
    if (newline != absl::string_view::npos) {
      line.insert(0, std::string(text.substr(newline + 1)));
      break;
    }
    line.insert(0, std::string(text));
    end = start;
  }
  return line;
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

std::string RotatedLogPath(const std::string& path, uint64_t first_index) {
  return absl::StrFormat("%s.%020u", path, first_index);
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         bool include_facts) {
  AuditLogOptions options;
  options.path = path;
  options.include_facts = include_facts;
  return Open(std::move(options));
}

absl::StatusOr<AuditLog::TreeState> AuditLog::Resume(const AuditLogOptions& options,
                                                     uint64_t* file_first_index) {
  TreeState state;
  *file_first_index = 0;
  // Only a regular file is read back: not standard output, a pipe or a
  // device (/dev/full reads zeros for ever).
  if (struct stat file {}; options.path == "-" || ::stat(options.path.c_str(), &file) != 0 ||
                           !S_ISREG(file.st_mode)) {
    return state;
  }
  const bool indexed = options.signer != nullptr;
  // The tree of the last checkpoint, to be found again in the files.
  std::optional<Checkpoint> last;
  if (indexed) {
    absl::StatusOr<std::string> text = ReadFileBytes(options.checkpoints_path);
    if (text.ok()) {
      const std::vector<std::string> notes = SplitNotes(*text);
      if (!notes.empty()) {
        absl::StatusOr<NoteVerifier> verifier =
            NoteVerifier::FromVerifierKey(options.signer->VerifierKey());
        if (!verifier.ok()) return verifier.status();
        absl::StatusOr<Checkpoint> checkpoint = verifier->Open(notes.back());
        if (!checkpoint.ok()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "audit checkpoints ", options.checkpoints_path,
              ": the last checkpoint does not verify with this signing key (",
              checkpoint.status().message(), "); run trialrules audit verify"));
        }
        last = *std::move(checkpoint);
      }
    }
  }
  bool matched_last = !last.has_value() || last->size == 0;
  uint64_t live_records = 0;  // in the file at options.path
  absl::Status scanned = ForEachLogLine(options.path, [&](const LogLine& line) -> absl::Status {
    const auto where = [&] { return absl::StrCat(*line.file, ":", line.line_number); };
    const bool live = *line.file == options.path;
    if (!indexed) {
      if (line.ends_with_newline) {
        ++state.size;
        live_records += live;
      }
      return absl::OkStatus();
    }
    absl::StatusOr<LogEnvelope> envelope = ParseLogLine(line.text);
    if (!envelope.ok() || !envelope->indexed) {
      // A torn line is kept as it is; a later torn_tail record accounts for it.
      return absl::OkStatus();
    }
    live_records += live;
    if (envelope->leaf_index != state.size ||
        envelope->prev_leaf_hash != (state.size == 0 ? "" : HexOf(state.last_leaf_hash))) {
      return absl::FailedPreconditionError(absl::StrCat(
          where(), ": leaf ", envelope->leaf_index, " does not follow leaf ",
          state.size == 0 ? "(none)" : absl::StrCat(state.size - 1),
          "; the log's files were changed or belong to another log"));
    }
    state.last_leaf_hash = LeafHash(line.text);
    state.tree.Append(state.last_leaf_hash);
    ++state.size;
    absl::Time time;
    std::string error;
    if (absl::ParseTime(absl::RFC3339_full, envelope->time, &time, &error)) {
      state.last_micros = absl::ToUnixMicros(time);
    }
    if (last.has_value() && state.size == last->size) {
      if (state.tree.Root() != last->root) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the first ", last->size, " records of the audit log do not have the root of "
            "its last checkpoint; run trialrules audit verify"));
      }
      matched_last = true;
      state.checkpointed_size = last->size;
    }
    return absl::OkStatus();
  });
  if (absl::IsNotFound(scanned)) scanned = absl::OkStatus();  // a new log
  *file_first_index = state.size - live_records;
  if (!scanned.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit log ", options.path, ": ", scanned.message()));
  }
  if (!matched_last) {
    return absl::FailedPreconditionError(absl::StrCat(
        "audit log ", options.path, " has ", state.size, " records but its last checkpoint ",
        "covers ", last->size, ": records were removed; run trialrules audit verify"));
  }
  return state;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  if (options.signer != nullptr && options.checkpoints_path.empty()) {
    if (options.path == "-") {
      return absl::InvalidArgumentError(
          "a signed audit log on standard output needs a checkpoints file (--audit-checkpoints)");
    }
    options.checkpoints_path = options.path + ".checkpoints";
  }
  const std::string& path = options.path;
  if (path != "-") {
    // A fresh volume has no directories yet: make those the path names.
    for (size_t slash = path.find('/', 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      ::mkdir(path.substr(0, slash).c_str(), 0750);
    }
  }
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
  std::string first_record;
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
    if (options.signer != nullptr) {
      // The fragment is no leaf; this record accounts for it, so that a
      // verifier tells a torn write from an edit.
      const std::string fragment = LastLine(fd, file.st_size);
      first_record = absl::StrCat("{\"torn_tail\":{\"bytes\":", fragment.size(),
                                  ",\"sha256\":\"", Sha256Hex(fragment), "\"}}");
    }
  }
  uint64_t file_first_index = 0;
  absl::StatusOr<TreeState> state = Resume(options, &file_first_index);
  if (!state.ok()) {
    ::close(fd);
    return state.status();
  }
  if (options.signer == nullptr) {
    std::cerr << "audit log " << path
              << ": no signing key (--audit-signing-key); decisions are recorded but the log "
                 "cannot prove itself complete and unaltered\n";
  } else {
    std::cerr << "audit log " << path << ": signed as " << options.origin << " ("
              << options.signer->VerifierKey() << "), " << state->size
              << " records so far, checkpoints in " << options.checkpoints_path << "\n";
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options), fd, regular, torn_tails,
                                             *std::move(state), file_first_index,
                                             std::move(first_record)));
  log->file_bytes_ = regular ? static_cast<uint64_t>(::lseek(fd, 0, SEEK_END)) : 0;
  return log;
}

AuditLog::AuditLog(AuditLogOptions options, int fd, bool sync, uint64_t torn_tails,
                   TreeState state, uint64_t file_first_index, std::string first_record)
    : options_(std::move(options)),
      fd_(fd),
      sync_(sync),
      torn_tails_(torn_tails),
      state_(std::move(state)),
      file_first_index_(file_first_index) {
  size_ = state_.size;
  checkpointed_size_ = state_.checkpointed_size;
  unchecked_records_ = state_.size - state_.checkpointed_size;
  if (!first_record.empty()) {
    queued_records_.push_back(std::move(first_record));
    queued_done_.push_back([](absl::Status) {});
  }
  if (sync_ || signed_log()) {
    writer_ = std::thread([this] { WriterLoop(); });
  } else if (!queued_records_.empty()) {
    std::unique_lock<std::mutex> lock(mutex_);
    WriteQueued(lock);
  }
}

AuditLog::~AuditLog() {
  if (writer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    queued_.notify_all();
    writer_.join();  // writes what was queued, and the last checkpoint, first
  }
  ::close(fd_);
}

void AuditLog::Append(std::string record, Done done) {
  std::unique_lock<std::mutex> lock(mutex_);
  queued_records_.push_back(std::move(record));
  queued_done_.push_back(std::move(done));
  if (writer_.joinable()) {
    lock.unlock();
    queued_.notify_one();
    return;
  }
  if (writing_) return;  // the writer in progress takes these too
  WriteQueued(lock);
}

void AuditLog::CheckpointNow(std::function<void(absl::StatusOr<std::string>)> done) {
  if (!signed_log()) {
    done(absl::FailedPreconditionError(
        "the audit log is not signed (the server has no --audit-signing-key)"));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    checkpoint_waiters_.push_back(std::move(done));
  }
  queued_.notify_one();
}

std::string AuditLog::Seal(const std::vector<std::string>& records, TreeState* state) const {
  std::string bytes;
  size_t length = 0;
  for (const std::string& record : records) length += record.size() + 192;
  bytes.reserve(length);
  // Never earlier than the line before: records are ordered by leaf index,
  // and a clock stepped back must not make them look reordered.
  state->last_micros = std::max(state->last_micros, absl::ToUnixMicros(absl::Now()));
  const absl::Time time = absl::FromUnixMicros(state->last_micros);
  for (const std::string& record : records) {
    const size_t start = bytes.size();
    if (signed_log()) {
      absl::StrAppend(&bytes, "{\"leaf_index\":", state->size, ",\"prev_leaf_hash\":\"",
                      state->size == 0 ? "" : HexOf(state->last_leaf_hash), "\",\"record\":");
    } else {
      bytes.append("{\"record\":");
    }
    bytes.append(record);
    bytes.append(",\"time\":\"");
    AppendRecordTime(time, &bytes);
    bytes.append("\"}");
    if (signed_log()) {
      state->last_leaf_hash = LeafHash(absl::string_view(bytes).substr(start));
      state->tree.Append(state->last_leaf_hash);
    }
    ++state->size;
    bytes.push_back('\n');
  }
  return bytes;
}

void AuditLog::WriteQueued(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  std::vector<std::string> records;
  std::vector<Done> callbacks;
  while (!queued_done_.empty()) {
    records.swap(queued_records_);
    callbacks.swap(queued_done_);
    lock.unlock();
    TreeState sealed = state_;
    const std::string bytes = Seal(records, &sealed);
    absl::Status status = Write(bytes);
    if (status.ok()) {
      state_ = std::move(sealed);
      size_ = state_.size;
      file_bytes_ += bytes.size();
      AfterWrite(records.size());
    }
    for (Done& callback : callbacks) callback(status);
    records.clear();
    callbacks.clear();
    lock.lock();
  }
  writing_ = false;
}

void AuditLog::AfterWrite(uint64_t records) {
  if (options_.max_file_bytes > 0 && sync_ && file_bytes_ >= options_.max_file_bytes) {
    if (absl::Status s = RotateFile(); !s.ok()) {
      std::cerr << "audit log " << options_.path << ": " << s.message() << "\n";
    }
  }
  if (!signed_log()) return;
  unchecked_records_ += records;
  if (unchecked_records_ >= options_.checkpoint_records) (void)WriteCheckpoint();
}

absl::Status AuditLog::RotateFile() {
  const std::string rotated = RotatedLogPath(options_.path, file_first_index_);
  if (struct stat taken {}; ::stat(rotated.c_str(), &taken) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot rotate to ", rotated, ": it exists already; the file goes on"));
  }
  if (::rename(options_.path.c_str(), rotated.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rotate to ", rotated, ": ",
                                               std::strerror(errno), "; the file goes on"));
  }
  const int fd = ::open(options_.path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    // Go on in the renamed file rather than lose records.
    ::rename(rotated.c_str(), options_.path.c_str());
    return absl::UnavailableError(absl::StrCat("cannot start a new file: ",
                                               std::strerror(errno), "; the file goes on"));
  }
  // The rename and the new name are made durable with the directory.
  const size_t slash = options_.path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : options_.path.substr(0, slash + 1);
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  const int old = fd_;
  fd_ = fd;
  ::close(old);
  file_first_index_ = state_.size;
  file_bytes_ = 0;
  std::cerr << "audit log " << options_.path << ": rotated to " << rotated << "\n";
  return absl::OkStatus();
}

absl::StatusOr<std::string> AuditLog::WriteCheckpoint() {
  absl::StatusOr<std::string> signed_note = options_.signer->Sign(
      CheckpointBody({options_.origin, state_.size, state_.tree.Root(), {}}));
  if (!signed_note.ok()) {
    std::cerr << "audit checkpoints: cannot sign: " << signed_note.status().message() << "\n";
    return signed_note.status();
  }
  const std::string& note = *signed_note;
  const int fd = ::open(options_.checkpoints_path.c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  bool written = fd >= 0 && ::write(fd, note.data(), note.size()) ==
                                static_cast<ssize_t>(note.size());
  int error = errno;
  if (written && ::fdatasync(fd) != 0) {
    written = false;
    error = errno;
  }
  if (fd >= 0) ::close(fd);
  if (!written) {
    // The records are written; only their proof is late. The next
    // checkpoint covers them.
    const absl::Status status = absl::UnavailableError(
        absl::StrCat("audit checkpoints ", options_.checkpoints_path,
                     ": cannot write a checkpoint: ", std::strerror(error)));
    std::cerr << status.message() << "\n";
    return status;
  }
  unchecked_records_ = 0;
  last_note_ = note;
  last_checkpoint_ = absl::Now();
  checkpointed_size_ = state_.size;
  return note;
}

void AuditLog::WriterLoop() {
  const auto interval = std::chrono::milliseconds(
      std::max<int64_t>(10, absl::ToInt64Milliseconds(options_.checkpoint_interval)));
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    queued_.wait_for(lock, interval, [&] {
      return closing_ || !queued_done_.empty() || !checkpoint_waiters_.empty();
    });
    if (!queued_done_.empty()) WriteQueued(lock);
    if (!signed_log()) {
      if (closing_ && queued_done_.empty()) return;
      continue;
    }
    std::vector<std::function<void(absl::StatusOr<std::string>)>> waiters;
    waiters.swap(checkpoint_waiters_);
    const bool due = unchecked_records_ > 0 &&
                     (closing_ || !waiters.empty() ||
                      absl::Now() - last_checkpoint_ >= options_.checkpoint_interval);
    if (due || !waiters.empty()) {
      lock.unlock();
      absl::StatusOr<std::string> note =
          due || last_note_.empty() ? WriteCheckpoint() : absl::StatusOr<std::string>(last_note_);
      for (auto& waiter : waiters) waiter(note);
      lock.lock();
    }
    if (closing_ && queued_done_.empty()) return;
  }
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
    std::cerr << "audit log " << options_.path << ": writing again\n";
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Failed(absl::string_view step, int error) {
  const std::string reason = std::strerror(error);
  last_errno_ = error;
  ++failures_;
  if (healthy_.exchange(false)) {
    std::cerr << "audit log " << options_.path << ": " << step << " failed (" << reason
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
    std::cerr << "audit log " << options_.path << ": space available again; accepting decisions\n";
  }
}

}  // namespace trialrules

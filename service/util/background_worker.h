// Threads of their own for work a caller may ask for that can take long
// (checking a rule file it sent), so that such work never holds a thread
// that answers decisions.
#ifndef TRIALRULES_SERVICE_UTIL_BACKGROUND_WORKER_H_
#define TRIALRULES_SERVICE_UTIL_BACKGROUND_WORKER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace trialrules {

// A fixed number of threads taking jobs from a bounded queue. The threads
// run at the lowest CPU priority (nice 19): on a busy core, decisions come
// first. A job beyond the queue is refused at once, so the caller can be
// told to come back instead of waiting without bound.
class BackgroundWorker {
 public:
  // `queue_capacity` jobs may wait beside the `threads` running.
  BackgroundWorker(int threads, int queue_capacity);
  // Runs the jobs still queued (a job must finish promptly once its caller
  // is gone), then joins the threads.
  ~BackgroundWorker();
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  // False, and `job` dropped unrun, when the queue is full.
  bool TrySubmit(std::function<void()> job);

 private:
  void Work();

  const size_t queue_capacity_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> queue_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_BACKGROUND_WORKER_H_

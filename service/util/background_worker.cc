#include "service/util/background_worker.h"

#include <sys/resource.h>
#include <unistd.h>

namespace trialrules {

BackgroundWorker::BackgroundWorker(int threads, int queue_capacity)
    : queue_capacity_(static_cast<size_t>(queue_capacity)) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

BackgroundWorker::~BackgroundWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

bool BackgroundWorker::TrySubmit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() >= queue_capacity_) return false;
    queue_.push_back(std::move(job));
  }
  changed_.notify_one();
  return true;
}

void BackgroundWorker::Work() {
  // Linux applies nice to the calling thread alone. Raising it needs no
  // privilege; failing to is harmless (the work still runs).
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

}  // namespace trialrules

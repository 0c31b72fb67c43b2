// The bounded worker: jobs run on its own low-priority threads, a full queue
// refuses at once, and the destructor runs what is still queued.
#include "service/util/background_worker.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace trialrules {
namespace {

// A one-shot signal from the standard library, whose synchronization
// ThreadSanitizer sees (Debian's Abseil is not instrumented).
class Notification {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mutex_);
    notified_ = true;
    changed_.notify_all();
  }
  void WaitForNotification() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return notified_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool notified_ = false;
};

TEST(BackgroundWorkerTest, AFullQueueRefusesAtOnceAndQueuedJobsRunInOrder) {
  BackgroundWorker worker(/*threads=*/1, /*queue_capacity=*/2);
  Notification started, release;
  ASSERT_TRUE(worker.TrySubmit([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();
  std::vector<int> order;
  Notification second_done;
  EXPECT_TRUE(worker.TrySubmit([&] { order.push_back(1); }));
  EXPECT_TRUE(worker.TrySubmit([&] {
    order.push_back(2);
    second_done.Notify();
  }));
  bool ran_refused = false;
  EXPECT_FALSE(worker.TrySubmit([&] { ran_refused = true; }));
  release.Notify();
  second_done.WaitForNotification();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(ran_refused);
  // The slots came back.
  Notification again;
  EXPECT_TRUE(worker.TrySubmit([&] { again.Notify(); }));
  again.WaitForNotification();
}

TEST(BackgroundWorkerTest, TheDestructorRunsTheJobsStillQueued) {
  std::atomic<int> ran{0};
  int accepted = 0;
  Notification started, release;
  {
    BackgroundWorker worker(/*threads=*/1, /*queue_capacity=*/3);
    ASSERT_TRUE(worker.TrySubmit([&] {
      started.Notify();
      release.WaitForNotification();
      ++ran;
    }));
    started.WaitForNotification();
    for (int i = 0; i < 3; ++i) accepted += worker.TrySubmit([&] { ++ran; }) ? 1 : 0;
    release.Notify();
  }
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(ran.load(), 4);
}

TEST(BackgroundWorkerTest, JobsRunOffTheCallersThreadAtTheLowestPriority) {
  BackgroundWorker worker(/*threads=*/2, /*queue_capacity=*/4);
  std::thread::id job_thread;
  int niceness = 0;
  Notification done;
  ASSERT_TRUE(worker.TrySubmit([&] {
    job_thread = std::this_thread::get_id();
    niceness = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
    done.Notify();
  }));
  done.WaitForNotification();
  EXPECT_NE(job_thread, std::this_thread::get_id());
  EXPECT_EQ(niceness, 19);
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), 0);
}

TEST(BackgroundWorkerTest, ManySubmittersEveryAcceptedJobRunsOnce) {
  std::atomic<int> accepted{0}, ran{0};
  {
    BackgroundWorker worker(/*threads=*/2, /*queue_capacity=*/64);
    std::vector<std::thread> submitters;
    for (int t = 0; t < 4; ++t) {
      submitters.emplace_back([&] {
        for (int i = 0; i < 2000; ++i) {
          if (worker.TrySubmit([&] { ran.fetch_add(1); })) accepted.fetch_add(1);
        }
      });
    }
    for (std::thread& submitter : submitters) submitter.join();
  }
  EXPECT_GT(accepted.load(), 0);
  EXPECT_EQ(ran.load(), accepted.load());
}

}  // namespace
}  // namespace trialrules

// journal/log.cpp — the endurant log (log.h; notes cited as "log.h N").
#include "journal/log.h"

#include <fcntl.h>
#include <isa-l/crc.h>
#include <liburing.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

#include "util/durable.h"
#include "util/fault.h"
#include "util/metrics.h"

namespace tcfs::journal {
namespace {

constexpr char kSegMagic[8] = {'T', 'C', 'F', 'S', 'J', 'S', 'E', 'G'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kBatchMagic = 0x314A4354;  // "TCJ1"
constexpr size_t kBatchHeader = 48, kRecHeader = 48;
constexpr size_t kMaxStoreId = 256;

template <typename T>
void put(char* p, T v) {
  std::memcpy(p, &v, sizeof v);  // little-endian hosts only (x86_64, aarch64)
}
template <typename T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t round_up(uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }
size_t pad8(size_t n) { return (n + 7) & ~size_t{7}; }

// log.h 2: the batch CRC is keyed by the log key.
uint32_t batch_crc(uint64_t key, const char* p, size_t len) {
  uint32_t c = crc32_iscsi(reinterpret_cast<unsigned char*>(&key), sizeof key, 0xFFFFFFFF);
  // The crc field (bytes 4..7) counts as zero.
  static const unsigned char zero[4] = {0, 0, 0, 0};
  c = crc32_iscsi(const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(p)), 4, c);
  c = crc32_iscsi(const_cast<unsigned char*>(zero), 4, c);
  return crc32_iscsi(const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(p + 8)),
                     static_cast<int>(len - 8), c);
}

uint32_t header_crc(const char* block) {
  std::string b(block, kBlock);
  std::memset(&b[12], 0, 4);
  return crc32_iscsi(reinterpret_cast<unsigned char*>(b.data()), kBlock, 0xFFFFFFFF);
}

// An aligned buffer for O_DIRECT.
struct Buf {
  char* p = nullptr;
  explicit Buf(size_t n) {
    void* v = nullptr;
    if (posix_memalign(&v, kBlock, n) == 0) p = static_cast<char*>(v);
  }
  ~Buf() { free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

std::string_view bytes_of(const Record& r) { return r.ref.empty() ? std::string_view(r.data) : r.ref; }
size_t encoded_size(const Record& r) { return kRecHeader + pad8(r.handle.size() + bytes_of(r).size()); }

// Appends r at p (which has room); returns the bytes used.
size_t encode(char* p, const Record& r) {
  std::memset(p, 0, kRecHeader);
  p[0] = static_cast<char>(r.kind);
  put<uint16_t>(p + 2, static_cast<uint16_t>(r.handle.size()));
  const std::string_view data = bytes_of(r);
  put<uint32_t>(p + 4, static_cast<uint32_t>(data.size()));
  put<uint64_t>(p + 8, r.seq);
  put<uint64_t>(p + 16, r.off);
  put<uint64_t>(p + 24, r.size);
  put<int64_t>(p + 32, r.mtime_sec);
  put<uint32_t>(p + 40, r.mtime_nsec);
  std::memcpy(p + kRecHeader, r.handle.data(), r.handle.size());
  std::memcpy(p + kRecHeader + r.handle.size(), data.data(), data.size());
  size_t n = kRecHeader + r.handle.size() + data.size();
  std::memset(p + n, 0, pad8(n) - n);
  return pad8(n);
}

// A batch header at p (len bytes available) that is valid for (key, gen,
// first seq `want`, or any seq > want - 1 when !exact); its records.
bool parse_batch(const char* p, size_t avail, uint64_t key, uint64_t gen, uint64_t want, bool exact,
                 std::vector<Record>* out, uint32_t* len_out) {
  if (avail < kBlock || get<uint32_t>(p) != kBatchMagic || get<uint64_t>(p + 8) != gen) return false;
  uint64_t first = get<uint64_t>(p + 16);
  uint32_t nrec = get<uint32_t>(p + 24), len = get<uint32_t>(p + 28);
  if (len < kBlock || len % kBlock || len > avail || len > kMaxBatch) return false;
  if (exact ? first != want : first < want) return false;
  if (batch_crc(key, p, len) != get<uint32_t>(p + 4)) return false;
  size_t at = kBatchHeader;
  for (uint32_t i = 0; i < nrec; i++) {
    if (at + kRecHeader > len) return false;
    const char* r = p + at;
    Record rec;
    rec.kind = static_cast<Kind>(r[0]);
    size_t hl = get<uint16_t>(r + 2), dl = get<uint32_t>(r + 4);
    rec.seq = get<uint64_t>(r + 8);
    if ((rec.kind != Kind::Data && rec.kind != Kind::Ckpt && rec.kind != Kind::Drop) || rec.seq != first + i)
      return false;
    if (at + kRecHeader + hl + dl > len) return false;
    rec.off = get<uint64_t>(r + 16);
    rec.size = get<uint64_t>(r + 24);
    rec.mtime_sec = get<int64_t>(r + 32);
    rec.mtime_nsec = get<uint32_t>(r + 40);
    if (out) {
      rec.handle.assign(r + kRecHeader, hl);
      rec.data.assign(r + kRecHeader + hl, dl);
      out->push_back(std::move(rec));
    }
    at += pad8(kRecHeader + hl + dl);
  }
  if (len_out) *len_out = len;
  return nrec > 0;
}

Status damage(const std::string& dir, unsigned seg, uint64_t off, const std::string& why) {
  return Status::error(EIO, "endurant log " + dir + "/" + seg_name(seg) + " at offset " + std::to_string(off) + ": " +
                                why + " (the mount refuses to apply a log it cannot verify: restore " + dir +
                                " from a copy, or move it aside to mount without it, losing the stable writes it "
                                "holds since its last checkpoint)");
}

Result<std::string> read_file(const std::string& path, uint64_t max) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::from_errno("endurant log: open " + path);
  std::string out(static_cast<size_t>(max), '\0');
  uint64_t got = 0;
  while (got < max) {
    ssize_t r = ::pread(fd.get(), out.data() + got, static_cast<size_t>(max - got), static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::from_errno("endurant log: read " + path);
    if (r == 0) break;
    got += static_cast<uint64_t>(r);
  }
  out.resize(static_cast<size_t>(got));
  return out;
}

// Zeroes [from, end) of a segment (O_DIRECT: from and end are block-aligned)
// with writes of the zeroed buffer `zero` (kMaxBatch bytes).
Status zero_range(int fd, const char* zero, uint64_t from, uint64_t end, const std::string& path) {
  for (uint64_t at = from; at < end; at += kMaxBatch) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kMaxBatch, end - at));
    if (::pwrite(fd, zero, n, static_cast<off_t>(at)) != static_cast<ssize_t>(n))
      return Status::from_errno("endurant log: zero " + path);
  }
  return {};
}

struct Scanned {
  unsigned index;
  uint64_t gen;
  std::string bytes;
};

}  // namespace

std::string seg_name(unsigned i) { return "seg-" + std::to_string(i); }

// log.h 6: every segment file there is (a log may have had more segments
// before), headers checked; those never started are left out.
static Status read_segments(const Options& o, Recovered& rec, std::vector<Scanned>& used) {
  rec.segs.resize(o.segments);
  for (unsigned i = 0;; i++) {
    std::string path = o.dir + "/" + seg_name(i);
    struct stat sb;
    if (::stat(path.c_str(), &sb) != 0) {
      if (errno == ENOENT && i >= o.segments) break;
      if (errno == ENOENT) continue;
      return Status::from_errno("endurant log: stat " + path);
    }
    if (i >= rec.segs.size()) rec.segs.resize(i + 1);
    auto b = read_file(path, static_cast<uint64_t>(sb.st_size));
    if (!b) return b.status();
    std::string& s = *b;
    if (s.size() < kBlock || std::all_of(s.begin(), s.begin() + kBlock, [](char c) { return c == 0; }))
      continue;  // never started
    if (std::memcmp(s.data(), kSegMagic, 8) != 0) return damage(o.dir, i, 0, "not a segment header");
    if (header_crc(s.data()) != get<uint32_t>(s.data() + 12)) return damage(o.dir, i, 0, "header checksum mismatch");
    if (get<uint32_t>(s.data() + 8) != kVersion)
      return damage(o.dir, i, 0, "format version " + std::to_string(get<uint32_t>(s.data() + 8)));
    uint32_t idl = get<uint32_t>(s.data() + 44);
    std::string id(s.data() + 48, std::min<size_t>(idl, kMaxStoreId));
    if (id != o.store_id) return damage(o.dir, i, 0, "the segment belongs to store " + id + ", not " + o.store_id);
    uint64_t key = get<uint64_t>(s.data() + 24);
    if (rec.key && key != rec.key) return damage(o.dir, i, 0, "the segment's log key differs from the others'");
    rec.key = key;
    used.push_back({i, get<uint64_t>(s.data() + 16), std::move(s)});
  }
  return {};
}

// log.h 6.
Result<Recovered> recover(const Options& o, const std::function<Status(const Record&)>& apply) {
  Recovered rec;
  std::vector<Scanned> used;
  TCFS_TRY(read_segments(o, rec, used));
  std::sort(used.begin(), used.end(), [](const Scanned& a, const Scanned& b) { return a.gen < b.gen; });
  // Pass 1: validity, the newest CKPT (log.h 6).
  uint64_t expect = 0;  // the next seq (0: whatever the first batch says)
  std::vector<std::pair<size_t, uint64_t>> batches;  // (used index, offset)
  std::map<std::string, uint64_t> dropped;           // log.h 7: handle -> its newest Drop
  for (size_t u = 0; u < used.size(); u++) {
    const Scanned& sc = used[u];
    if (u && sc.gen == used[u - 1].gen) return damage(o.dir, sc.index, 0, "two segments of one generation");
    auto& seg = rec.segs[sc.index];
    seg.gen = sc.gen;
    uint64_t off = kBlock;
    const bool newest = u + 1 == used.size();
    while (off < sc.bytes.size()) {
      std::vector<Record> rs;
      uint32_t len = 0;
      bool ok = expect ? parse_batch(sc.bytes.data() + off, sc.bytes.size() - off, rec.key, sc.gen, expect, true, &rs, &len)
                       : parse_batch(sc.bytes.data() + off, sc.bytes.size() - off, rec.key, sc.gen, 1, false, &rs, &len);
      if (!ok) break;
      batches.emplace_back(u, off);
      for (const auto& r : rs) {
        if (r.kind == Kind::Ckpt) rec.ckpt = std::max(rec.ckpt, r.off);
        if (r.kind == Kind::Drop) dropped[r.handle] = r.seq;
      }
      expect = rs.back().seq + 1;
      seg.max_seq = rs.back().seq;
      off += len;
    }
    seg.end = off;
    // Anything valid after the end of this segment's batches is damage in the middle.
    for (uint64_t p = off + kBlock; p < sc.bytes.size(); p += kBlock)
      if (parse_batch(sc.bytes.data() + p, sc.bytes.size() - p, rec.key, sc.gen, expect ? expect : 1, false, nullptr,
                      nullptr))
        return damage(o.dir, sc.index, off, "an unreadable batch before valid ones");
    if (newest && off < sc.bytes.size() && get<uint32_t>(sc.bytes.data() + off) == kBatchMagic &&
        get<uint64_t>(sc.bytes.data() + off + 8) == sc.gen)
      rec.torn_bytes = std::min<uint64_t>(get<uint32_t>(sc.bytes.data() + off + 28), sc.bytes.size() - off);
  }
  // A started segment with no valid batch though one of its generation is there: a seq gap.
  for (const Scanned& sc : used)
    if (rec.segs[sc.index].end == kBlock && sc.bytes.size() > kBlock &&
        parse_batch(sc.bytes.data() + kBlock, sc.bytes.size() - kBlock, rec.key, sc.gen, 1, false, nullptr, nullptr))
      return damage(o.dir, sc.index, kBlock, "its first batch does not continue the previous segment's seqs");
  rec.last_seq = expect ? expect - 1 : 0;
  // Pass 2: the records after the newest CKPT, in seq order.
  for (const auto& [u, off] : batches) {
    const Scanned& sc = used[u];
    std::vector<Record> rs;
    parse_batch(sc.bytes.data() + off, sc.bytes.size() - off, rec.key, sc.gen, 1, false, &rs, nullptr);
    for (const auto& r : rs) {
      if (r.kind != Kind::Data || r.seq <= rec.ckpt) continue;
      if (auto d = dropped.find(r.handle); d != dropped.end() && r.seq < d->second) continue;  // log.h 7
      TCFS_TRY(apply(r));
      rec.replayed++;
    }
  }
  return rec;
}

// ---------------------------------------------------------------- Log

static prometheus::Histogram& batch_sizes();

Result<std::unique_ptr<Log>> Log::open(const Options& o, const Recovered& r) {
  if (o.segments < 2 || o.segment_bytes % kBlock || o.segment_bytes < kMinSegment)
    return Status::error(EINVAL, "endurant log " + o.dir + ": at least 2 segments of at least " +
                                     std::to_string(kMinSegment >> 10) + " KiB are needed");
  if (o.store_id.size() > kMaxStoreId) return Status::error(EINVAL, "endurant log: store id too long");
  std::unique_ptr<Log> log(new Log(o));
  (void)batch_sizes();  // its metric is shown from the start
  log->key_ = r.key;
  while (!log->key_) log->key_ = std::random_device{}() * 0x100000001ull ^ std::random_device{}();
  TCFS_TRY(log->open_segments(r));
  auto* ring = new io_uring;
  if (io_uring_queue_init(8, ring, 0) == 0) {
    log->ring_ = ring;
  } else {
    delete ring;
    spdlog::info("endurant log {}: io_uring unavailable; batches are written with pwritev2", o.dir);
  }
  {
    MutexLock g(log->mu_);
    log->stats_.uring = log->ring_ != nullptr;
    log->stats_.limit_bytes = o.segment_bytes * o.segments;
  }
  log->thread_ = std::thread([p = log.get()] { p->committer(); });
  return log;
}

// log.h 1, 6: the segment files, and where appends continue.
Status Log::open_segments(const Recovered& r) {
  if (::mkdir(opt_.dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::from_errno("endurant log: create " + opt_.dir);
  Fd dir(::open(opt_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Status::from_errno("endurant log: open " + opt_.dir);
  Buf zero(kMaxBatch);
  if (!zero.p) return Status::error(ENOMEM, "endurant log: buffer");
  std::memset(zero.p, 0, kMaxBatch);
  MutexLock g(mu_);
  size_t newest = SIZE_MAX;
  for (unsigned i = 0; i < opt_.segments; i++) {
    std::string path = opt_.dir + "/" + seg_name(i);
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600));
    if (!fd) return Status::from_errno("endurant log: open " + path);
    struct stat sb;
    if (::fstat(fd.get(), &sb) != 0) return Status::from_errno("endurant log: stat " + path);
    Recovered::Seg rs = i < r.segs.size() ? r.segs[i] : Recovered::Seg{};
    // log.h 1: written once with zeros (a short file: from where it ends); log.h 6: the newest
    // segment's bytes after its valid batches too.
    uint64_t from = static_cast<uint64_t>(sb.st_size) < opt_.segment_bytes
                        ? static_cast<uint64_t>(sb.st_size) / kBlock * kBlock
                        : opt_.segment_bytes;
    if (rs.gen && rs.gen >= gen_) newest = i;
    Seg s;
    s.gen = rs.gen;
    s.max_seq = rs.max_seq;
    s.fd = std::move(fd);
    if (rs.gen > gen_) gen_ = rs.gen;
    segs_.push_back(std::move(s));
    if (from < opt_.segment_bytes) {
      if (::fallocate(segs_.back().fd.get(), 0, 0, static_cast<off_t>(opt_.segment_bytes)) != 0 && errno != EOPNOTSUPP)
        return Status::from_errno("endurant log: allocate " + path);
      TCFS_TRY(zero_range(segs_.back().fd.get(), zero.p, from, opt_.segment_bytes, path));
      if (::fsync(segs_.back().fd.get()) != 0) return Status::from_errno("endurant log: fsync " + path);
    }
  }
  if (::fsync(dir.get()) != 0) return Status::from_errno("endurant log: fsync " + opt_.dir);
  next_seq_ = r.last_seq + 1;
  durable_ = r.last_seq;
  last_data_ = r.last_seq;  // (a CKPT perhaps: dirty() then asks for one more, harmless)
  ckpt_ = r.ckpt;
  if (newest != SIZE_MAX) {  // continue there, after its valid batches, zeroed (log.h 6)
    cur_ = newest;
    off_ = r.segs[newest].end;
    ckpt_seg_ = newest;  // the newest CKPT is in it or older: it stays until a newer one
    TCFS_TRY(zero_range(segs_[cur_].fd.get(), zero.p, off_, opt_.segment_bytes,
                        opt_.dir + "/" + seg_name(static_cast<unsigned>(cur_))));
    if (::fdatasync(segs_[cur_].fd.get()) != 0) return Status::from_errno("endurant log: fdatasync");
  } else {
    cur_ = SIZE_MAX;  // no segment started yet: the first batch starts one
    off_ = opt_.segment_bytes;
  }
  stats_.durable_seq = durable_;
  stats_.ckpt_seq = ckpt_;
  return {};
}

Log::~Log() {
  {
    MutexLock g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (ring_) {
    io_uring_queue_exit(static_cast<io_uring*>(ring_));
    delete static_cast<io_uring*>(ring_);
  }
}

// What append() and append_all() take: no CKPT, a handle that fits.
static Status appendable(const Record& r) {
  if (r.kind == Kind::Ckpt) return Status::error(EINVAL, "endurant log: a checkpoint goes through checkpointed()");
  if (r.handle.size() > UINT16_MAX) return Status::error(EINVAL, "endurant log: handle too long");
  return {};
}

// log.h 3: one batch at most, so its records are one group.
Result<uint64_t> Log::append(std::vector<Record> recs) {
  size_t bytes = kBatchHeader;
  for (auto& r : recs) {
    TCFS_TRY(appendable(r));
    bytes += encoded_size(r);
  }
  if (bytes > kMaxBatch) return Status::error(EFBIG, "endurant log: records over one batch (" + std::to_string(bytes) + " bytes)");
  return append_all(std::move(recs));
}

// log.h 8: records of any size in all, in groups of at most one batch.
Result<uint64_t> Log::append_all(std::vector<Record> recs) {
  auto t = submit_all(std::move(recs));
  if (!t) return t.status();
  return t->wait();
}

Result<Log::Ticket> Log::submit_all(std::vector<Record> recs) {
  Ticket t;
  t.log_ = this;
  size_t bytes = 0;
  for (auto& r : recs) {
    TCFS_TRY(appendable(r));
    const size_t n = encoded_size(r);
    if (kBatchHeader + n > kMaxBatch)
      return Status::error(EFBIG, "endurant log: a record of " + std::to_string(n) + " bytes is over one batch");
    if (t.groups_.empty() || bytes + n > kMaxBatch) t.groups_.push_back(std::make_unique<Pending>()), bytes = kBatchHeader;
    bytes += n;
    t.groups_.back()->recs.push_back(std::move(r));
  }
  if (t.groups_.empty()) return t;
  MutexLock lk(mu_);
  if (stopping_) {
    t.groups_.clear();  // never queued: nothing to wait for
    return Status::error(ESHUTDOWN, "endurant log: closed");
  }
  for (auto& p : t.groups_) queue_.push_back(p.get());
  cv_.notify_one();  // the committer alone waits on cv_
  return t;
}

Result<uint64_t> Log::Ticket::wait() {
  if (groups_.empty()) return log_ ? log_->durable_seq() : 0;
  Status st;
  uint64_t last = 0;
  {
    UniqueLock lk(log_->mu_);
    for (auto& p : groups_) {
      lk.wait(p->cv, [&]() TCFS_REQUIRES(log_->mu_) { return p->done; });
      if (st && !p->st) st = p->st;
      last = p->last;
    }
  }
  groups_.clear();
  if (!st) return st;
  return last;
}

Log::Ticket::~Ticket() {
  if (!groups_.empty()) (void)wait();  // the committer holds pointers to them until they are done
}

bool Log::live(const std::string& handle) const {
  MutexLock g(mu_);
  return live_.count(handle) != 0;
}

Status Log::checkpointed(uint64_t upto) {
  Record c;
  c.kind = Kind::Ckpt;
  c.off = upto;
  Pending p;
  p.recs.push_back(std::move(c));
  UniqueLock lk(mu_);
  if (stopping_) return Status::error(ESHUTDOWN, "endurant log: closed");
  if (upto > durable_) return Status::error(EINVAL, "endurant log: checkpoint past the durable records");
  queue_.push_back(&p);
  cv_.notify_one();
  lk.wait(p.cv, [&]() TCFS_REQUIRES(mu_) { return p.done; });
  return p.st;
}

uint64_t Log::durable_seq() const {
  MutexLock g(mu_);
  return durable_;
}

uint64_t Log::ckpt_seq() const {
  MutexLock g(mu_);
  return ckpt_;
}

bool Log::dirty() const {
  MutexLock g(mu_);
  return last_data_ > ckpt_ || !queue_.empty();
}

Stats Log::stats() const {
  MutexLock g(mu_);
  Stats s = stats_;
  s.used_bytes = used_locked() * opt_.segment_bytes;
  return s;
}

// log.h 4: a segment whose records are all retired, not the one being written nor the newest CKPT's.
bool Log::free_locked(size_t i) const {
  return i != cur_ && i != ckpt_seg_ && (segs_[i].gen == 0 || segs_[i].max_seq <= ckpt_);
}

size_t Log::used_locked() const {
  size_t n = 0;
  for (size_t i = 0; i < segs_.size(); i++) n += !free_locked(i);
  return n;
}

// log.h 3.
void Log::committer() {
  UniqueLock lk(mu_);
  bool blocked = false;  // log.h 5: data waits for space; only a CKPT can go
  for (;;) {
    lk.wait(cv_, [&]() TCFS_REQUIRES(mu_) {
      if (stopping_) return true;
      if (!blocked) return !queue_.empty();
      return std::any_of(queue_.begin(), queue_.end(), [](Pending* p) { return p->recs[0].kind == Kind::Ckpt; });
    });
    if (stopping_) break;
    std::vector<Pending*> batch;
    auto ck = std::find_if(queue_.begin(), queue_.end(), [](Pending* p) { return p->recs[0].kind == Kind::Ckpt; });
    if (ck != queue_.end()) {  // a CKPT alone (it always fits: log.h 5)
      batch.push_back(*ck);
      queue_.erase(ck);
    } else {
      size_t bytes = kBatchHeader;
      while (!queue_.empty()) {
        size_t n = 0;
        for (const auto& r : queue_.front()->recs) n += encoded_size(r);
        if (!batch.empty() && bytes + n > kMaxBatch) break;
        bytes += n;
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      uint64_t len = round_up(bytes);
      bool fits = cur_ != SIZE_MAX && off_ + len + kBlock <= opt_.segment_bytes;
      bool can_switch = false;
      for (size_t i = 0; i < segs_.size() && !fits; i++) can_switch |= free_locked(i);
      if (!fits && !can_switch) {  // log.h 5: full: wait for a checkpoint
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(*it);
        blocked = true;
        stats_.full_waits++;
        lk.unlock();
        if (opt_.on_full) opt_.on_full();
        lk.lock();
        continue;
      }
    }
    blocked = false;
    lk.unlock();
    commit_batch(std::move(batch));
    lk.lock();
  }
  for (Pending* p : queue_) finish_locked(p, Status::error(ESHUTDOWN, "endurant log: closed"));
  queue_.clear();
}

// Answers one append: under mu_, so its waiter (which owns p) cannot see
// done and return before the notify.
void Log::finish_locked(Pending* p, Status st) {
  p->last = st ? p->recs.back().seq : 0;
  p->st = std::move(st);
  p->done = true;
  p->cv.notify_one();
}

// log.h 1: the segment's header with generation gen, durable.
Status Log::start_segment(size_t i, uint64_t gen) {
  Buf b(kBlock);
  if (!b.p) return Status::error(ENOMEM, "endurant log: buffer");
  std::memset(b.p, 0, kBlock);
  std::memcpy(b.p, kSegMagic, 8);
  put<uint32_t>(b.p + 8, kVersion);
  put<uint64_t>(b.p + 16, gen);
  put<uint64_t>(b.p + 24, key_);
  put<uint64_t>(b.p + 32, opt_.segment_bytes);
  put<uint32_t>(b.p + 40, static_cast<uint32_t>(i));
  put<uint32_t>(b.p + 44, static_cast<uint32_t>(opt_.store_id.size()));
  std::memcpy(b.p + 48, opt_.store_id.data(), opt_.store_id.size());
  put<uint32_t>(b.p + 12, header_crc(b.p));
  TCFS_CRASH_POINT("journal.before_segment");
  return write_at(segs_[i].fd.get(), b.p, kBlock, 0);
}

// log.h 3: one write, durable when it returns OK.
Status Log::write_at(int fd, const char* buf, size_t len, uint64_t off) {
  if (int e = fault::check("journal.write")) return Status::error(e, "endurant log " + opt_.dir + ": write (injected)");
  size_t done = 0;
  while (done < len) {
    ssize_t n;
    if (ring_) {
      auto* ring = static_cast<io_uring*>(ring_);
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (!sqe) return Status::error(EAGAIN, "endurant log: no submission entry");
      io_uring_prep_write(sqe, fd, buf + done, static_cast<unsigned>(len - done), off + done);
      sqe->rw_flags = RWF_DSYNC;
      int rc = io_uring_submit_and_wait(ring, 1);
      if (rc < 0) return Status::error(-rc, "endurant log " + opt_.dir + ": io_uring submit");
      io_uring_cqe* cqe = nullptr;
      rc = io_uring_wait_cqe(ring, &cqe);
      if (rc < 0) return Status::error(-rc, "endurant log " + opt_.dir + ": io_uring wait");
      n = cqe->res;
      io_uring_cqe_seen(ring, cqe);
      if (n < 0) return Status::error(static_cast<int>(-n), "endurant log " + opt_.dir + ": write");
    } else {
      iovec iov{const_cast<char*>(buf + done), len - done};
      n = ::pwritev2(fd, &iov, 1, static_cast<off_t>(off + done), RWF_DSYNC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::from_errno("endurant log " + opt_.dir + ": write");
    }
    if (n == 0) return Status::error(EIO, "endurant log " + opt_.dir + ": short write");
    done += static_cast<size_t>(n);
  }
  return still_up(AT_FDCWD, opt_.dir.c_str(), "endurant log " + opt_.dir);  // util/durable.h
}

// log.h 1, 5: makes room for len bytes in the current segment, starting
// the oldest free segment when it has none (committer thread).
Status Log::make_room(uint64_t len, bool ckpt) {
  size_t pick = SIZE_MAX;
  uint64_t gen = 0;
  {
    MutexLock g(mu_);
    if (cur_ != SIZE_MAX && off_ + len + (ckpt ? 0 : kBlock) <= opt_.segment_bytes) return {};
    for (size_t i = 0; i < segs_.size(); i++)
      if (free_locked(i) && (pick == SIZE_MAX || segs_[i].gen < segs_[pick].gen)) pick = i;
    if (pick == SIZE_MAX) return Status::error(ENOSPC, "endurant log " + opt_.dir + ": no free segment");
    gen = ++gen_;
    segs_[pick].gen = gen;
    segs_[pick].max_seq = 0;
  }
  TCFS_TRY(start_segment(pick, gen));
  size_t used = 0;
  {
    MutexLock g(mu_);
    cur_ = pick;
    off_ = kBlock;
    used = used_locked();
  }
  // log.h 5: a checkpoint before the log is full, not when it is.
  if (2 * used >= segs_.size() && opt_.on_full) opt_.on_full();
  return {};
}

// log.h 2: the batch's bytes (len, padded) with seqs from `first`; the last seq.
static uint64_t encode_batch(char* p, uint64_t len, uint64_t key, uint64_t gen, uint64_t first,
                      const std::vector<Record*>& recs) {
  std::memset(p, 0, len);
  size_t at = kBatchHeader;
  uint64_t seq = first;
  for (Record* r : recs) r->seq = seq++, at += encode(p + at, *r);
  put<uint32_t>(p, kBatchMagic);
  put<uint64_t>(p + 8, gen);
  put<uint64_t>(p + 16, first);
  put<uint32_t>(p + 24, static_cast<uint32_t>(seq - first));
  put<uint32_t>(p + 28, static_cast<uint32_t>(len));
  put<uint32_t>(p + 4, batch_crc(key, p, len));
  return seq - 1;
}

// Records per batch written, the measure of group commit (issue 15 metrics).
static prometheus::Histogram& batch_sizes() {
  static prometheus::Histogram& h =
      metrics::histogram("tcfs_journal_batch_records", "Records per batch of the endurant log (each batch: one durable write).")
          .Add({}, metrics::count_buckets());
  return h;
}

// log.h 3, 4: the batch written (committer thread), its appends answered.
void Log::commit_batch(std::vector<Pending*> batch) {
  const bool ckpt = batch[0]->recs[0].kind == Kind::Ckpt;
  std::vector<Record*> recs;
  size_t bytes = kBatchHeader;
  for (Pending* p : batch)
    for (auto& r : p->recs) bytes += encoded_size(r), recs.push_back(&r);
  const uint64_t len = round_up(bytes);
  uint64_t first = 0, last = 0, off = 0;
  size_t seg = 0;
  Buf b(len);
  Status st = b.p ? make_room(len, ckpt) : Status::error(ENOMEM, "endurant log: batch buffer");
  if (st) {
    uint64_t gen;
    {
      MutexLock g(mu_);
      first = next_seq_, seg = cur_, off = off_, gen = segs_[cur_].gen;
    }
    last = encode_batch(b.p, len, key_, gen, first, recs);
    TCFS_CRASH_POINT("journal.before_batch");
    st = write_at(segs_[seg].fd.get(), b.p, len, off);  // COMMIT POINT of these stable writes (log.h 3)
    if (st) TCFS_CRASH_POINT("journal.after_batch");
  }
  if (!st) spdlog::error("endurant log {}: batch of {} bytes not written: {}", opt_.dir, len, st.message());
  {
    MutexLock g(mu_);
    if (st) {
      next_seq_ = last + 1;
      durable_ = last;
      off_ = off + len;
      segs_[seg].max_seq = last;
      stats_.batches++;
      stats_.bytes += len;
      batch_sizes().Observe(static_cast<double>(recs.size()));  // metrics: records per batch (group commit)
      stats_.durable_seq = last;
      if (ckpt) {  // log.h 4
        ckpt_ = std::max(ckpt_, batch[0]->recs[0].off);
        ckpt_seg_ = seg;
        stats_.ckpts++;
        stats_.ckpt_seq = ckpt_;
        const uint64_t upto = ckpt_;
        std::erase_if(live_, [upto](const auto& e) { return e.second <= upto; });  // log.h 8
      } else {
        stats_.records += last - first + 1;
        last_data_ = last;
        for (const Record* r : recs) live_[r->handle] = r->seq;  // log.h 8
      }
    }
    for (Pending* p : batch) finish_locked(p, st);
  }
}

}  // namespace tcfs::journal

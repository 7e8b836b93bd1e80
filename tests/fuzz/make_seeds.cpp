// make_seeds — writes the seed corpus (tests/fuzz/corpus/<target>/) with
// the project's real encoders: compounds, replies and frames as the client
// library sends them, records and streams as the syncer writes them,
// shards as ObjectStore::put stores them. NDJSON and S3 answers, which
// other programs write, are samples in their documented form.
//   make_seeds DIR     (tests/fuzz/run-fuzz --seeds runs it)
#include <sys/stat.h>

#include <zstd.h>

#include <cstdio>
#include <fstream>
#include <spdlog/spdlog.h>
#include <string>

#include "blob/cipher.h"
#include "blob/hash.h"
#include "control/messages.h"
#include "control/wire.h"
#include "fuzz_input.h"
#include "mem_blobber.h"
#include "sync/records.h"
#include "sync/stream.h"

using namespace tcfs;

namespace {

std::string dir_;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  std::string d = dir_ + "/" + target;
  mkdir(d.c_str(), 0755);
  std::ofstream(d + "/" + name, std::ios::binary) << bytes;
}

std::vector<std::pair<std::string, Compound>> compounds() {
  std::vector<std::pair<std::string, Compound>> v;
  Compound a;
  a.mkdir("d", 0755, true).create("d/f", 0644, true).write("d/f", "hello", 3).append("d/f", "!");
  v.emplace_back("files", a);
  Compound b;
  b.write_fd("d/big", 0, 4096, 10, 100).copy("d/big", "d/copy", 1, 2, 3).truncate("d/big", 7);
  v.emplace_back("fd-copy", b);
  Compound c;
  c.chmod("d/f", 0600).chown("d/f", 1000, std::nullopt).utimes("d/f", Timestamp{5, 6, false}, Timestamp{0, 0, true});
  v.emplace_back("setattr", c);
  Compound d;
  d.setxattr("d/f", "user.k", std::string("v\0w", 3), 1).removexattr("d/f", "user.k");
  v.emplace_back("xattr", d);
  Compound e;
  e.symlink("target", "d/l").link("d/f", "d/h").rename("d/h", "d/g", 1).remove("d", true);
  e.options.txn = false;
  v.emplace_back("names", e);
  Compound f;  // values of kMinAttached bytes or more: the client library attaches them
  f.write("d/f", std::string(300, 'a'), 0).setxattr("d/f", "user.big", std::string(100, 'b'), 0);
  v.emplace_back("attached", f);
  return v;
}

std::string frame(const std::string& payload) {
  std::string s;
  fuzz::put_le(s, payload.size(), 4);
  return s + payload;
}

// hello, sync, status and maintain (control/messages.h), requests and replies.
void message_seeds() {
  auto put = [](const std::string& name, const control::Json& j) { seed("control_msgpack", name, control::to_bytes(j)); };
  put("hello-request", control::encode_hello_request());
  put("hello", control::encode_hello({"tcfs 0.1.0", "/mnt/x", "/var/lib/tcfs/x", 100000, 1 << 20, 1 << 24, 1024}));
  put("sync-request", control::encode_sync_request({5000}));
  put("synced", control::encode_synced({ETIMEDOUT, "3 marks pending"}));
  put("status-request", control::encode_status_request());
  put("status", control::encode_status({"/mnt/x", "/s", {{"sync", {{"epoch", 4}, {"pending", 2}}}}}));
  put("maintain-request", control::encode_maintain_request({"scrub"}));
  put("maintained", control::encode_maintained({0, "", {{"objects", 9}, {"problems", control::Json::array()}}}));
}

void control_seeds() {
  for (auto& [name, c] : compounds()) {
    std::string p = control::to_bytes(control::encode_compound(c, name == "files"));
    seed("control_msgpack", name, p);
    seed("control_frame", name, std::string(1, name == "fd-copy" ? '\1' : '\0') + frame(p));
    std::string a = control::compound_frame(c, false);  // the client library's form: attached bytes
    if (a != control::to_bytes(control::encode_compound(c, false))) {
      seed("control_msgpack", name + "-attached", a);
      seed("control_frame", name + "-attached", std::string(1, name == "fd-copy" ? '\1' : '\0') + frame(a));
    }
  }
  CompoundReply r;
  r.outcome = Outcome::RolledBack;
  r.failed_op = 1;
  r.err = ENOENT;
  r.message = "op 1: no such file";
  r.txn_id = 9;
  r.results = {{0, 5, true}, {ENOENT, 0, true}};
  seed("control_msgpack", "reply", control::to_bytes(control::encode_reply(r)));
  seed("control_msgpack", "rejection", control::to_bytes(control::rejection(EINVAL, "bad")));
  std::string prog = control::to_bytes(control::encode_progress(1, 2));
  seed("control_msgpack", "progress", prog);
  seed("control_frame", "two-frames", std::string(1, '\2') + frame(prog) + frame(prog));
  message_seeds();
}

void ndjson_seeds() {
  seed("ndjson", "release",
       "{\"op\":\"mkdir\",\"path\":\"release-42\",\"mode\":\"0755\",\"parents\":true}\n"
       "{\"op\":\"create\",\"path\":\"release-42/model.bin\",\"mode\":420}\n"
       "{\"op\":\"write\",\"path\":\"release-42/model.bin\",\"from\":\"/scratch/model.bin\",\"length\":10}\n"
       "{\"op\":\"create\",\"path\":\"release-42/VERSION\",\"exclusive\":true}\n"
       "{\"op\":\"write\",\"path\":\"release-42/VERSION\",\"data\":\"42\\n\"}\n"
       "# a comment\n\n"
       "{\"op\":\"rename\",\"path\":\"current\",\"to\":\"previous\",\"flags\":[\"noreplace\"]}\n"
       "{\"op\":\"symlink\",\"path\":\"current\",\"target\":\"release-42\"}\n");
  seed("ndjson", "ops",
       "{\"op\":\"write\",\"path\":\"log\",\"data_base64\":\"AAEC/w==\",\"append\":true}\n"
       "{\"op\":\"copy\",\"path\":\"big\",\"to\":\"big.head\",\"length\":4096}\n"
       "{\"op\":\"truncate\",\"path\":\"big\",\"size\":0}\n"
       "{\"op\":\"setattr\",\"path\":\"big\",\"mode\":\"0600\",\"mtime\":\"now\",\"atime\":{\"sec\":1700000000,\"nsec\":5}}\n"
       "{\"op\":\"setattr\",\"path\":\"big\",\"uid\":0,\"gid\":1,\"mtime\":1.5}\n"
       "{\"op\":\"setxattr\",\"path\":\"big\",\"name\":\"user.origin\",\"value\":\"lab-3\",\"xattr_flags\":\"create\"}\n"
       "{\"op\":\"removexattr\",\"path\":\"big\",\"name\":\"user.origin\"}\n"
       "{\"op\":\"link\",\"path\":\"big\",\"path2\":\"big2\"}\n"
       "{\"op\":\"remove\",\"path\":\"old-tree\",\"recursive\":true}\n");
  seed("ndjson", "errors", "{\"op\":\"mkdir\"}\nnot json\n{\"op\":\"frob\",\"path\":\"x\"}\n");
}

std::vector<sync::Record> records() {
  sync::InodeRec f;
  f.id = 7;
  f.mode = 0100644;
  f.uid = 1000;
  f.size = 300;
  f.mtime_sec = 1700000000;
  f.mtime_nsec = 5;
  f.xattrs = {{"user.a", "1"}, {"user.b", std::string("\0\1", 2)}};
  blob::BlockRef b1;
  b1.hash = blob::sha256("one");
  b1.len = 100;
  b1.obj = b1.hash;
  b1.objlen = 100;
  blob::BlockRef b2;
  b2.hash = blob::sha256("two");
  b2.len = 200;
  b2.packed = true;
  b2.obj = blob::sha256("pack");
  b2.objlen = 4096;
  b2.off = 1000;
  f.blocks = {b1, b2};
  sync::InodeRec l;
  l.id = 8;
  l.mode = 0120777;
  l.target = "../elsewhere";
  sync::InodeRec dev;
  dev.id = 9;
  dev.mode = 020600;
  dev.rdev = 0x0501;
  return {f, l, dev, sync::EntryRec{1, "file", 7}, sync::EntryRec{1, "gone", 0}, sync::DropRec{8}};
}

void records_seeds() {
  const char* names[] = {"inode-file", "inode-symlink", "inode-dev", "entry", "entry-removed", "drop"};
  auto recs = records();
  for (size_t i = 0; i < recs.size(); i++) seed("records", names[i], sync::encode(recs[i]));
}

// A stream written by StreamWriter, in fuzz_stream's input form: as stored
// (flags 0), and with the chunks decompressed for the harness to compress
// again (flags 3).
void stream_seeds() {
  std::vector<fuzz::MemBlobber*> mem;
  auto os = fuzz::mem_store(1, 0, &mem);
  const std::string base = "n/j/0000000000000001-00000001-0000";
  sync::StreamWriter w(*os, base, 200);
  for (const auto& r : records()) (void)w.add(sync::encode(r));
  nlohmann::json info = {{"epoch", 1}, {"prev", ""}, {"boot", 1}, {"kind", "journal"}, {"head", base}};
  if (!w.finish(info)) abort();
  auto end = os->read_all(base + "/end", nullptr);
  if (!end) abort();
  std::string as_stored(1, '\0'), raw(1, '\3');
  fuzz::put_piece(as_stored, end->substr(0, end->size() - 32));
  fuzz::put_piece(raw, end->substr(0, end->size() - 32));
  for (size_t i = 0;; i++) {
    auto z = os->read_all(sync::chunk_name(base, i), nullptr);
    if (!z) break;
    fuzz::put_piece(as_stored, *z);
    std::string plain(ZSTD_getFrameContentSize(z->data(), z->size()), '\0');
    plain.resize(ZSTD_decompress(plain.data(), plain.size(), z->data(), z->size()));
    fuzz::put_piece(raw, plain);
  }
  seed("stream", "journal", as_stored);
  seed("stream", "journal-plain", raw);
}

// An object put by ObjectStore, in fuzz_shard's input form.
std::string shard_input(unsigned k, unsigned m, const std::string& data, unsigned missing, uint64_t off,
                        uint64_t len, bool sealed = false) {
  std::vector<fuzz::MemBlobber*> mem;
  std::shared_ptr<const blob::Cipher> c;
  if (sealed) c = blob::Cipher::make(std::string(blob::kKeyBytes, '\x5e')).value();
  auto os = fuzz::mem_store(k, m, &mem, c);
  const std::string name = "b/5e/5eed";
  if (!os->put(name, data)) abort();
  std::string s;
  s.push_back(static_cast<char>(k - 1));
  s.push_back(static_cast<char>(m));
  s.push_back(sealed ? '\x82' : '\x02');  // verifier: accept (high bit: sealed with fuzz_shard's key)
  fuzz::put_le(s, data.size(), 4);
  fuzz::put_le(s, off, 4);
  fuzz::put_le(s, len, 4);
  for (unsigned i = 0; i < k + m; i++) {
    std::string* shard = mem[os->place(name, i)]->find(name + "." + std::to_string(i));
    s.push_back(i == missing ? '\0' : '\1');
    fuzz::put_piece(s, i == missing || !shard ? std::string() : *shard);
  }
  return s;
}

void shard_seeds() {
  std::string data;
  for (int i = 0; i < 300; i++) data += static_cast<char>(i * 7);
  seed("shard", "k2m1", shard_input(2, 1, data, 99, 10, 200));
  seed("shard", "k3m2-missing", shard_input(3, 2, data, 0, 0, 300));
  seed("shard", "k1m0", shard_input(1, 0, "tiny", 99, 1, 2));
  seed("shard", "k2m1-empty", shard_input(2, 1, "", 99, 0, 0));
  seed("shard", "k2m1-sealed", shard_input(2, 1, data, 99, 10, 200, true));
}

void s3xml_seeds() {
  seed("s3xml", "list",
       std::string(1, '\1') +
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
           "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>pre/</Prefix>"
           "<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
           "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
           "<Contents><Key>pre/b/ab/ab12.0</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
           "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>4160</Size>"
           "<StorageClass>STANDARD</StorageClass></Contents>"
           "<Contents><Key>pre/n/j/a&amp;b&#x41;&#66;</Key><Size>0</Size></Contents></ListBucketResult>");
  seed("s3xml", "error",
       std::string(1, '\0') +
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key "
           "does not exist.</Message><Key>b/ab/x.0</Key><RequestId>tx0000</RequestId><HostId>h</HostId></Error>");
  seed("s3xml", "multipart",
       std::string(1, '\0') +
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>bkt</Bucket>"
           "<Key>big.0</Key><UploadId>2~iCw_lDY8VoNrAv9NqJ8Gd2Y2wHe5kW5</UploadId></InitiateMultipartUploadResult>");
  seed("s3xml", "empty-list",
       std::string(1, '\0') + "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
                              "<Contents/></ListBucketResult>");
}

// A sealed object in fuzz_sealed's input form (its fixed key).
std::string sealed_input(const std::string& plain, uint64_t off, uint64_t len) {
  auto c = blob::Cipher::make(std::string(blob::kKeyBytes, '\x5e'));
  auto s = c ? (*c)->seal("p/5e/5eed", plain) : Result<std::string>(c.status());
  if (!s) abort();
  std::string in(1, '\x07');
  fuzz::put_le(in, plain.size(), 4);
  fuzz::put_le(in, off, 4);
  fuzz::put_le(in, len, 4);
  fuzz::put_piece(in, *s);
  return in + "round trip";
}

void sealed_seeds() {
  seed("sealed", "small", sealed_input("hello, sealed world", 3, 9));
  seed("sealed", "empty", sealed_input("", 0, 0));
  std::string data;
  for (int i = 0; i < 3000; i++) data += static_cast<char>(i * 13);
  seed("sealed", "3000", sealed_input(data, 2990, 10));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  dir_ = argv[1];
  spdlog::set_level(spdlog::level::off);
  mkdir(dir_.c_str(), 0755);
  control_seeds();
  ndjson_seeds();
  records_seeds();
  stream_seeds();
  shard_seeds();
  s3xml_seeds();
  sealed_seeds();
  return 0;
}

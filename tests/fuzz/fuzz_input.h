// tests/fuzz/fuzz_input.h — the small framing the structured fuzz targets
// cut their input with (make_seeds.cpp writes the same): one byte, a
// little-endian u16/u64, or a length-prefixed (u16) piece of bytes. Past
// the end every read yields zeros / empty pieces, so any input is valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace tcfs::fuzz {

// A check the target asserts on what the code under test did: a failure is
// a bug the fuzzer reports (abort() is a crash to libFuzzer).
#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                    \
    }                                                                             \
  } while (0)

class Input {
 public:
  Input(const uint8_t* p, size_t n) : s_(reinterpret_cast<const char*>(p), n) {}
  bool empty() const { return pos_ >= s_.size(); }
  uint8_t u8() { return pos_ < s_.size() ? static_cast<uint8_t>(s_[pos_++]) : 0; }
  uint64_t le(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= uint64_t{u8()} << (8 * i);
    return v;
  }
  std::string piece() {
    size_t n = static_cast<size_t>(le(2));
    std::string_view p = s_.substr(std::min(pos_, s_.size()), n);
    pos_ += p.size();
    return std::string(p);
  }
  std::string rest() {
    std::string_view p = s_.substr(std::min(pos_, s_.size()));
    pos_ = s_.size();
    return std::string(p);
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// The writer's side, for seeds.
inline void put_le(std::string& s, uint64_t v, int n) {
  for (int i = 0; i < n; i++) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_piece(std::string& s, std::string_view p) {
  put_le(s, p.size(), 2);
  s.append(p);
}

}  // namespace tcfs::fuzz

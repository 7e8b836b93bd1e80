// blob/ec.h — K+M erasure coding over GF(2^8) with ISA-L (Cauchy matrix).
//
// Contract:
//  * Codec::make(k, m) for 1 <= k, 0 <= m, k + m <= kMaxShards. Shards
//    0..k-1 are the data itself (systematic code), k..k+m-1 parity.
//  * encode(len, data, parity): from k data buffers of len bytes each,
//    writes m parity buffers of len bytes.
//  * rebuild(len, have, want): from any k distinct shards (index, bytes)
//    rebuilds the listed wanted shards (data or parity). Any k of the k+m
//    shards suffice (a Cauchy matrix has every k x k submatrix invertible).
//    The code works byte position by byte position, so the same call
//    rebuilds a range [a, b) of a shard from the same range of k others.
//  * EINVAL for fewer than k shards, duplicate or out-of-range indexes.
//
// Thread-safety: a Codec is immutable after make(); encode/rebuild may run
// on many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tcfs/status.h"

namespace tcfs::blob {

constexpr unsigned kMaxShards = 32;

class Codec {
 public:
  static Result<Codec> make(unsigned k, unsigned m);
  unsigned k() const { return k_; }
  unsigned m() const { return m_; }

  void encode(size_t len, const uint8_t* const* data, uint8_t* const* parity) const;
  Status rebuild(size_t len, const std::vector<unsigned>& have_idx, const uint8_t* const* have,
                 const std::vector<unsigned>& want_idx, uint8_t* const* want) const;

 private:
  Codec() = default;
  unsigned k_ = 0, m_ = 0;
  std::vector<uint8_t> matrix_;  // (k+m) x k encode matrix
  std::vector<uint8_t> tables_;  // ec_init_tables() of the parity rows
};

}  // namespace tcfs::blob

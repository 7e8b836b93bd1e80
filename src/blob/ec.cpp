// blob/ec.cpp — ISA-L erasure coding (ec.h).
#include "blob/ec.h"

#include <isa-l/erasure_code.h>

#include <string>

namespace tcfs::blob {

Result<Codec> Codec::make(unsigned k, unsigned m) {
  if (k < 1 || k + m > kMaxShards)
    return Status::error(EINVAL, "erasure code " + std::to_string(k) + "+" + std::to_string(m) +
                                     ": need 1 <= K and K+M <= " + std::to_string(kMaxShards));
  Codec c;
  c.k_ = k;
  c.m_ = m;
  c.matrix_.resize(size_t{k + m} * k);
  gf_gen_cauchy1_matrix(c.matrix_.data(), static_cast<int>(k + m), static_cast<int>(k));
  if (m > 0) {
    c.tables_.resize(size_t{32} * k * m);
    ec_init_tables(static_cast<int>(k), static_cast<int>(m), c.matrix_.data() + size_t{k} * k, c.tables_.data());
  }
  return c;
}

void Codec::encode(size_t len, const uint8_t* const* data, uint8_t* const* parity) const {
  if (m_ == 0 || len == 0) return;
  ec_encode_data(static_cast<int>(len), static_cast<int>(k_), static_cast<int>(m_),
                 const_cast<uint8_t*>(tables_.data()), const_cast<uint8_t**>(data), const_cast<uint8_t**>(parity));
}

Status Codec::rebuild(size_t len, const std::vector<unsigned>& have_idx, const uint8_t* const* have,
                      const std::vector<unsigned>& want_idx, uint8_t* const* want) const {
  const unsigned n = k_ + m_;
  if (have_idx.size() < k_) return Status::error(EINVAL, "erasure decode: fewer than K shards");
  std::vector<bool> seen(n, false);
  for (size_t i = 0; i < k_; i++) {
    if (have_idx[i] >= n || seen[have_idx[i]]) return Status::error(EINVAL, "erasure decode: bad shard index");
    seen[have_idx[i]] = true;
  }
  for (unsigned w : want_idx)
    if (w >= n) return Status::error(EINVAL, "erasure decode: bad wanted index");
  if (want_idx.empty() || len == 0) return {};
  // b: the k rows of the encode matrix for the shards we have; d = b^-1
  // maps them back to the data. A wanted data row r is d[r]; a wanted
  // parity row p is matrix[p] x d.
  std::vector<uint8_t> b(size_t{k_} * k_), d(size_t{k_} * k_);
  for (size_t i = 0; i < k_; i++)
    for (size_t j = 0; j < k_; j++) b[i * k_ + j] = matrix_[size_t{have_idx[i]} * k_ + j];
  if (gf_invert_matrix(b.data(), d.data(), static_cast<int>(k_)) != 0)
    return Status::error(EIO, "erasure decode: singular matrix");
  std::vector<uint8_t> rows(want_idx.size() * k_);
  for (size_t w = 0; w < want_idx.size(); w++) {
    unsigned r = want_idx[w];
    for (size_t j = 0; j < k_; j++) {
      if (r < k_) {
        rows[w * k_ + j] = d[size_t{r} * k_ + j];
      } else {
        uint8_t s = 0;
        for (size_t i = 0; i < k_; i++) s ^= gf_mul(matrix_[size_t{r} * k_ + i], d[i * k_ + j]);
        rows[w * k_ + j] = s;
      }
    }
  }
  std::vector<uint8_t> tbl(size_t{32} * k_ * want_idx.size());
  ec_init_tables(static_cast<int>(k_), static_cast<int>(want_idx.size()), rows.data(), tbl.data());
  ec_encode_data(static_cast<int>(len), static_cast<int>(k_), static_cast<int>(want_idx.size()), tbl.data(),
                 const_cast<uint8_t**>(have), const_cast<uint8_t**>(want));
  return {};
}

}  // namespace tcfs::blob

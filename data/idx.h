// Reader for IDX files, the format MNIST and Fashion-MNIST ship in.
//
// Layout (all integers big-endian):
//   bytes 0-1  zero
//   byte  2    element type (0x08 = unsigned byte, the only type ringtrain reads)
//   byte  3    number of dimensions d
//   then d uint32 dimension sizes, then prod(dims) elements, and nothing else.
// So 3-D uint8 images have the magic number 0x00000803 and 1-D uint8 labels 0x00000801.
//
// Files may be plain or gzip-compressed: zlib's gzread reads both transparently.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace ringtrain {

// The magic number of an IDX file of unsigned bytes with `dims` dimensions.
constexpr uint32_t idxUint8Magic(int dims) { return 0x00000800u | static_cast<uint32_t>(dims); }

// Reads an IDX file of unsigned bytes that must have exactly `expectedDims` dimensions and
// returns it as a uint8 tensor of those dimensions. Throws DataError naming the file and the
// problem when it is missing, unreadable, has the wrong magic number or dimensions, is
// truncated, carries trailing data, or is a corrupt gzip stream.
torch::Tensor readIdxUint8(const std::string& path, int expectedDims);

}  // namespace ringtrain

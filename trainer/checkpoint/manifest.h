// A checkpoint's MANIFEST: the file that makes a checkpoint directory real (written last),
// and the only list of files a reader opens in it.
//
//   <file> <size> <crc32>          one line per file, in the order written
//   manifest-crc32 <crc32>         of every byte above this line
//
// A checkpoint may come from someone else (a shared file system, a download), so reading
// one trusts nothing in it: every entry must name a plain file of the checkpoint directory
// (no '/', no "." or "..", so nothing outside it is ever opened), a listed file that is a
// symbolic link or not a regular file is refused, sizes are checked against the file's real
// size before any buffer is allocated, and readVerifiedFile() hands the caller the very bytes
// it checked (read once: the file cannot change between its check and its parse).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringtrain {

struct ManifestEntry {
  std::string file;
  uint64_t size = 0;
  uint32_t crc = 0;
};

// Digests `files` (names inside `dir`) and writes dir/MANIFEST, fsync'ed.
void writeManifest(const std::string& dir, const std::vector<std::string>& files);

// Reads dir/MANIFEST and checks it (its trailer, every entry's name, no entry twice, every
// name of `required` listed); not the files it lists. Throws CheckpointError naming dir.
std::vector<ManifestEntry> readManifest(const std::string& dir,
                                        const std::vector<std::string>& required);

// Checks every entry's file (size and CRC-32, streamed). Throws CheckpointError naming it.
void verifyManifestFiles(const std::string& dir, const std::vector<ManifestEntry>& entries);

// The bytes of dir/file, read once and checked against its MANIFEST entry. Throws
// CheckpointError if the manifest does not list it or the file does not match.
std::string readVerifiedFile(const std::string& dir, const std::string& file);

// True for a name a manifest may list: one plain component of at most 255 bytes.
bool isPlainFileName(const std::string& name);

}  // namespace ringtrain

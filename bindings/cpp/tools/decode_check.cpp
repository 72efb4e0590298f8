// Decodes test vectors with the client's decoders: the harness for malformed-input and
// conformance tests (build it with -fsanitize=address,undefined).
//
//   decode_check FILE
//
// FILE holds records: uint8 kind ('h' hello, 'm' motion), uint32 little-endian length, bytes.
// Prints one line per record: "ok" plus a few decoded values, or "error: <code>: <message>"
// (code: malformed, invalid, unsupported_version).

#include <infp/client.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

static const char* code_name(infp::Error code) {
  switch (code) {
    case infp::Error::Malformed: return "malformed";
    case infp::Error::Invalid: return "invalid";
    case infp::Error::UnsupportedVersion: return "unsupported_version";
    default: return "none";
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  std::size_t pos = 0, records = 0, ok = 0;
  while (pos + 5 <= data.size()) {
    const unsigned char kind = data[pos];
    const std::size_t n = static_cast<std::size_t>(data[pos + 1]) |
                          (static_cast<std::size_t>(data[pos + 2]) << 8) |
                          (static_cast<std::size_t>(data[pos + 3]) << 16) |
                          (static_cast<std::size_t>(data[pos + 4]) << 24);
    pos += 5;
    if (n > data.size() - pos) break;
    // Copy into a buffer of exactly n bytes so AddressSanitizer sees any read past the end.
    std::vector<unsigned char> payload(data.begin() + static_cast<std::ptrdiff_t>(pos),
                                       data.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    ++records;
    std::string error;
    infp::Error code = infp::Error::None;
    const void* p = payload.empty() ? nullptr : payload.data();
    if (kind == 'h') {
      infp::Hello h;
      if (infp::decode_hello(p, payload.size(), h, &error, &code)) {
        ++ok;
        std::printf("ok hello %zu %d %g\n", h.blendshapes.size(), h.latent_size, h.fps);
      } else {
        std::printf("error: %s: %s\n", code_name(code), error.c_str());
      }
    } else {
      infp::Motion m;
      if (infp::decode_motion(p, payload.size(), m, &error, &code)) {
        ++ok;
        std::printf("ok motion %llu %lld %zu %zu\n", static_cast<unsigned long long>(m.seq),
                    static_cast<long long>(m.index), m.blendshapes.size(), m.latent.size());
      } else {
        std::printf("error: %s: %s\n", code_name(code), error.c_str());
      }
    }
  }
  std::fprintf(stderr, "%zu records, %zu decoded\n", records, ok);
  return 0;
}

#include "file/input_file.h"

#include <utility>

namespace psa::adapters::file {

InputFile::InputFile(InputFile&& other) noexcept : handle_(std::exchange(other.handle_, -1)) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = std::exchange(other.handle_, -1);
  }
  return *this;
}

InputFile::~InputFile() { close(); }

}  // namespace psa::adapters::file

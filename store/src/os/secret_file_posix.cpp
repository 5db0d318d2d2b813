#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "psa/store/os/secret_file.h"

namespace psa::os {
namespace fs = std::filesystem;

namespace {

std::string ownerName(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string octal(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

}  // namespace

SecretFileInfo describeSecretFile(const fs::path& path) {
  SecretFileInfo info;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    info.problem = errno == EACCES ? "cannot look at it (permission denied)" : "missing";
    return info;
  }
  info.present = true;
  info.owner = ownerName(st.st_uid);
  info.owner_uid = static_cast<int64_t>(st.st_uid);
  info.permissions = octal(st.st_mode);
  info.size = static_cast<uint64_t>(st.st_size);
  const unsigned mode = st.st_mode & 07777;
  if (!S_ISREG(st.st_mode)) {
    info.problem = "not a regular file";
  } else if ((mode & 0044) != 0) {
    info.problem = "is readable by group/others (mode " + info.permissions + ")";
    info.fix = "chmod 600 " + path.string();
  } else if ((mode & 0022) != 0) {
    info.problem = "is writable by group/others (mode " + info.permissions + ")";
    info.fix = "chmod 600 " + path.string();
  } else if (st.st_size == 0) {
    info.problem = "empty";
  }
  return info;
}

Status checkSecretFile(const fs::path& path, std::string_view what) {
  const SecretFileInfo info = describeSecretFile(path);
  if (info.problem.empty()) {
    return {};
  }
  if (info.problem == "empty") {
    return {};  // the content check names this more precisely
  }
  if (!info.present) {
    return Error(Errc::key_file,
                 "cannot stat " + std::string(what) + " " + path.string() + ": " + info.problem);
  }
  std::string msg = std::string(what) + " " + path.string() + " " + info.problem;
  if (!info.fix.empty()) {
    msg += "; run: " + info.fix;
  }
  return Error(Errc::key_file, msg);
}

Result<std::string> sealSecretText(std::string_view plain) { return std::string(plain); }

Result<std::string> unsealSecretText(std::string_view stored) { return std::string(stored); }

}  // namespace psa::os

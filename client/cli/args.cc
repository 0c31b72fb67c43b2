#include "client/cli/args.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/facts_file.h"
#include "service/util/file.h"

namespace trialrules::cli {

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::set<std::string>& valued,
                               const std::set<std::string>& flags) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (!arg.starts_with("--")) {
      args.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    const size_t equals = name.find('=');
    const bool inline_value = equals != std::string::npos;
    if (inline_value) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    if (flags.count(name) > 0 && !inline_value) {
      args.switches.insert(name);
    } else if (valued.count(name) > 0) {
      if (!inline_value) {
        if (i + 1 >= argv.size()) {
          return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        }
        value = argv[++i];
      }
      args.options[name] = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    }
  }
  return args;
}

absl::StatusOr<std::vector<PatientFacts>> ReadPatientsFile(const std::string& path) {
  const absl::StatusOr<std::string> text = ReadFileBytes(path);
  if (!text.ok()) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return ParsePatientsJson(*text);
}

absl::StatusOr<absl::Duration> DeadlineFlag(const Args& args) {
  int milliseconds = 0;
  if (!absl::SimpleAtoi(args.Get("deadline-ms", "10000"), &milliseconds) ||
      milliseconds <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--deadline-ms \"", args.Get("deadline-ms"), "\" is not a positive whole number"));
  }
  return absl::Milliseconds(milliseconds);
}

std::set<std::string> WithServerOptions(std::set<std::string> valued) {
  valued.insert(kServerOptions.begin(), kServerOptions.end());
  return valued;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ServerChannel(const Args& args,
                                                             bool own_connection) {
  const ChannelSecurity security{args.Get("tls-ca"), args.Get("tls-cert"), args.Get("tls-key"),
                                 args.Get("tls-server-name")};
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentials(security);
  if (!credentials.ok()) return credentials.status();
  return NewChannel(args.Get("server"), own_connection, *credentials,
                    security.server_name_override);
}

absl::StatusOr<std::unique_ptr<TrialRulesClient>> ServerClient(const Args& args) {
  absl::StatusOr<absl::Duration> deadline = DeadlineFlag(args);
  if (!deadline.ok()) return deadline.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ServerChannel(args);
  if (!channel.ok()) return channel.status();
  return std::make_unique<TrialRulesClient>(*std::move(channel), *deadline);
}

std::shared_ptr<const Catalog> LoadLocalCatalog(const std::string& path,
                                                bool report_refusals) {
  CatalogReload reload = ReloadCatalog(path, /*previous=*/nullptr);
  if (report_refusals) {
    for (const Problem& problem : reload.catalog->refused()) {
      std::cerr << problem.ToString() << "\n";
    }
  }
  return reload.catalog;
}

}  // namespace trialrules::cli

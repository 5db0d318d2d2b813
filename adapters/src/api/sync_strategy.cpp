#include "sync_strategy.h"

namespace psa::adapters::api {

const StrategyInfo* findStrategy(std::string_view name) {
  static const StrategyInfo kStrategies[] = {
      {"since-list", "", &makeSinceListStrategy},
      {"athena-feeds", "", &makeAthenaFeedsStrategy},
      {"kareo-soap", "", &makeKareoSoapStrategy},
      {"unity-changed", "/GetToken", &makeUnityChangedStrategy},
  };
  for (const auto& s : kStrategies) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

}  // namespace psa::adapters::api

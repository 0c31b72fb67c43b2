// Translation between the service's protos and the engine's types, and
// between absl::Status and grpc::Status. Nothing here decides anything.
#ifndef TRIALRULES_SERVICE_SERVER_CONVERT_H_
#define TRIALRULES_SERVICE_SERVER_CONVERT_H_

#include <grpcpp/support/status.h>

#include <vector>

#include "absl/status/statusor.h"
#include "service/engine/decision_table.h"
#include "service/engine/loader.h"
#include "service/engine/problem.h"
#include "service/engine/rule_set.h"
#include "trialrules/v1/service.pb.h"

namespace trialrules {

grpc::Status ToGrpcStatus(const absl::Status& status);

v1::Decision ToProto(Decision decision);
v1::Outcome ToProto(Outcome outcome);

void FillRuleSetRef(const RuleSet& rule_set, v1::RuleSetRef* out);

// Rule outcomes, missing facts and decision of `evaluation`.
void FillEvaluation(const RuleSet& rule_set, const Evaluation& evaluation,
                    v1::EvaluateResponse* out);

// A fact (or a table's input) as rule files declare it.
void FillFact(const FactSpec& spec, v1::Fact* out);

// Summary (ListRuleSets) or, with `full`, every fact and rule (GetRuleSet).
void FillRuleSetInfo(const RuleSet& rule_set, bool full, v1::RuleSetInfo* out);

// Per rule, what a file's test cases reach.
void FillCoverage(const RuleSet& rule_set, const std::vector<RuleCoverage>& coverage,
                  google::protobuf::RepeatedPtrField<v1::RuleCoverage>* out);

// A decision-table file: its terms with their inputs and rows.
void FillTableInfo(const DecisionTableSet& tables, v1::TableInfo* out);

// One observation set's grade: grades are whole numbers (a table's outputs
// are; GradeEvents serves grading tables).
void FillGradeResult(const DecisionTable& table, const TableResult& result,
                     v1::GradeResult* out);

void FillProblems(const std::vector<Problem>& problems,
                  google::protobuf::RepeatedPtrField<v1::Problem>* out);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_CONVERT_H_

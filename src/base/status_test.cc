#include "coffer/base/status.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Status UseHalf(int x, int* out) {
  COFFER_ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(Status, OkIsDefaultAndCheap) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, DataLossIsDistinctFromIoAndNotFound) {
  Status s = DataLoss("sector 3 failed authentication");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.code(), StatusCode::kIoError);
  EXPECT_EQ(s.WithContext("read").message(), "read: sector 3 failed authentication");
}

TEST(Result, PropagatesValueAndError) {
  int v = 0;
  EXPECT_TRUE(UseHalf(8, &v).ok());
  EXPECT_EQ(v, 4);
  Status s = UseHalf(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(ErrnoStatus, MapsCommonErrnos) {
  EXPECT_EQ(ErrnoStatus("open x", ENOENT).code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus("write x", ENOSPC).code(), StatusCode::kNoSpace);
  EXPECT_EQ(ErrnoStatus("read x", EIO).code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace coffer

#include "service/util/certificate.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>

namespace trialrules {

absl::StatusOr<absl::Time> CertificateNotAfter(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> certificate(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (certificate == nullptr) {
    return absl::InvalidArgumentError("no PEM certificate could be read from it");
  }
  std::tm not_after{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate.get()), &not_after) != 1) {
    return absl::InvalidArgumentError("the certificate's notAfter time is malformed");
  }
  return absl::FromTimeT(timegm(&not_after));
}

}  // namespace trialrules

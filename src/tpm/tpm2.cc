#include "coffer/tpm/tpm2.h"

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace coffer::tpm {
namespace {

// The TPM's own response code with the handle/session/parameter number stripped; 0 if the error
// comes from a TSS layer rather than the TPM.
uint32_t TpmCode(TSS2_RC rc) {
  if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER && (rc & TSS2_RC_LAYER_MASK) != TSS2_RESMGR_TPM_RC_LAYER) {
    return 0;
  }
  rc &= 0xFFFF;
  if (rc & TPM2_RC_FMT1) return rc & (TPM2_RC_FMT1 | 0x3F);
  return rc & 0x97F;
}

std::string RcText(TSS2_RC rc) { return Tss2_RC_Decode(rc); }

void WipeFree(void* p, size_t n) {
  if (!p) return;
  explicit_bzero(p, n);
  Esys_Free(p);
}

template <typename T>
struct EsysPtr {
  T* p = nullptr;
  ~EsysPtr() { WipeFree(p, sizeof(T)); }
  T** out() { return &p; }
  T* operator->() const { return p; }
};

// One ESYS connection over the TCTI; Open() fails with kUnavailable naming the TCTI.
class Session {
 public:
  ~Session() {
    for (ESYS_TR h : flush_) Esys_FlushContext(ctx_, h);
    if (ctx_) Esys_Finalize(&ctx_);
    if (tcti_) Tss2_TctiLdr_Finalize(&tcti_);
  }
  static Result<std::unique_ptr<Session>> Open(const std::string& conf) {
    // tss2 logs every TPM error code to stderr; coffer reports its own errors. TSS2_LOG set by
    // the user still wins (setenv without overwrite), e.g. TSS2_LOG=all+debug for diagnosis.
    static std::once_flag quiet;
    std::call_once(quiet, [] { setenv("TSS2_LOG", "all+NONE", 0); });
    auto s = std::unique_ptr<Session>(new Session);
    s->conf_ = conf;
    TSS2_RC rc = Tss2_TctiLdr_Initialize(conf.c_str(), &s->tcti_);
    if (rc != TSS2_RC_SUCCESS) {
      return Unavailable("cannot reach the TPM through TCTI '" + conf + "' (" + RcText(rc) +
                         "); set tcti= in the spec or COFFER_TPM2_TCTI");
    }
    rc = Esys_Initialize(&s->ctx_, s->tcti_, nullptr);
    if (rc != TSS2_RC_SUCCESS) {
      return Unavailable("cannot talk to the TPM through TCTI '" + conf + "' (" + RcText(rc) + ")");
    }
    return s;
  }
  ESYS_CONTEXT* ctx() const { return ctx_; }
  // Transport failures name the TCTI; TPM errors name the operation.
  Status Fail(const std::string& what, TSS2_RC rc) const {
    if (TpmCode(rc) == 0 && (rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER) {
      return Unavailable("TPM " + what + " failed: TCTI '" + conf_ + "': " + RcText(rc));
    }
    return IoError("TPM " + what + " failed: " + RcText(rc));
  }
  void FlushLater(ESYS_TR h) { flush_.push_back(h); }

 private:
  Session() = default;
  std::string conf_;
  TSS2_TCTI_CONTEXT* tcti_ = nullptr;
  ESYS_CONTEXT* ctx_ = nullptr;
  std::vector<ESYS_TR> flush_;
};

constexpr TPMT_SYM_DEF kNoSym = {.algorithm = TPM2_ALG_NULL, .keyBits = {}, .mode = {}};

TPML_PCR_SELECTION ToTpml(const PcrSelection& pcrs) {
  TPML_PCR_SELECTION sel{};
  sel.count = 1;
  sel.pcrSelections[0].hash = pcrs.hash_alg;
  sel.pcrSelections[0].sizeofSelect = 3;
  for (int i = 0; i < 24; ++i) {
    if (pcrs.mask & (1u << i)) sel.pcrSelections[0].pcrSelect[i / 8] |= uint8_t(1u << (i % 8));
  }
  return sel;
}

// Starts a session: policy, trial or HMAC. With salt_key (a loaded key of ours), the session is
// salted with it and uses AES-128-CFB parameter encryption (attrs: TPMA_SESSION_ENCRYPT for
// responses, _DECRYPT for commands), so the sealed secret never crosses the TPM bus in clear.
Result<ESYS_TR> StartSession(Session& s, TPM2_SE type, ESYS_TR salt_key, TPMA_SESSION attrs) {
  ESYS_TR session = ESYS_TR_NONE;
  TPMT_SYM_DEF aes{};
  aes.algorithm = TPM2_ALG_AES;
  aes.keyBits.aes = 128;
  aes.mode.aes = TPM2_ALG_CFB;
  bool salted = salt_key != ESYS_TR_NONE;
  TSS2_RC rc = Esys_StartAuthSession(s.ctx(), salt_key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     nullptr, type, salted ? &aes : &kNoSym, TPM2_ALG_SHA256, &session);
  if (rc != TSS2_RC_SUCCESS) return s.Fail("StartAuthSession", rc);
  s.FlushLater(session);
  if (salted) {
    rc = Esys_TRSess_SetAttributes(s.ctx(), session, TPMA_SESSION(attrs | TPMA_SESSION_CONTINUESESSION), 0xff);
    if (rc != TSS2_RC_SUCCESS) return s.Fail("TRSess_SetAttributes", rc);
  }
  return session;
}

// A policy session (or a trial session) after PolicyPCR for the current PCR values.
Result<ESYS_TR> PcrPolicySession(Session& s, const PcrSelection& pcrs, bool trial, ESYS_TR salt_key = ESYS_TR_NONE,
                                 TPMA_SESSION attrs = 0) {
  COFFER_ASSIGN_OR_RETURN(ESYS_TR session,
                          StartSession(s, trial ? TPM2_SE_TRIAL : TPM2_SE_POLICY, trial ? ESYS_TR_NONE : salt_key,
                                       attrs));
  TPM2B_DIGEST empty{};
  TPML_PCR_SELECTION sel = ToTpml(pcrs);
  TSS2_RC rc = Esys_PolicyPCR(s.ctx(), session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel);
  if (rc != TSS2_RC_SUCCESS) {
    if (TpmCode(rc) == TPM2_RC_VALUE || TpmCode(rc) == TPM2_RC_PCR) {
      return InvalidArgument("the TPM has no PCR bank/selection " + PcrSelectionToString(pcrs));
    }
    return s.Fail("PolicyPCR", rc);
  }
  return session;
}

Result<TPM2B_DIGEST> PcrPolicyDigest(Session& s, const PcrSelection& pcrs) {
  COFFER_ASSIGN_OR_RETURN(ESYS_TR trial, PcrPolicySession(s, pcrs, true));
  EsysPtr<TPM2B_DIGEST> digest;
  TSS2_RC rc = Esys_PolicyGetDigest(s.ctx(), trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, digest.out());
  if (rc != TSS2_RC_SUCCESS) return s.Fail("PolicyGetDigest", rc);
  return *digest.p;
}

// The storage primary key: the TCG "SRK" ECC P-256 template (AES-128-CFB, empty unique), so it is
// the same key every time on the same TPM (and owner seed).
Result<ESYS_TR> StoragePrimary(Session& s) {
  TPM2B_SENSITIVE_CREATE in_sensitive{};
  TPM2B_PUBLIC in_public{};
  TPMT_PUBLIC& p = in_public.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
  p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
  p.parameters.eccDetail.symmetric.keyBits.aes = 128;
  p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  p.unique.ecc.x.size = 32;  // TCG EK/SRK templates: 32 zero bytes
  p.unique.ecc.y.size = 32;
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  ESYS_TR handle = ESYS_TR_NONE;
  TSS2_RC rc = Esys_CreatePrimary(s.ctx(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                  &in_sensitive, &in_public, &outside, &creation_pcr, &handle, nullptr, nullptr,
                                  nullptr, nullptr);
  if (rc != TSS2_RC_SUCCESS) {
    if (TpmCode(rc) == TPM2_RC_BAD_AUTH || TpmCode(rc) == TPM2_RC_AUTH_FAIL) {
      return PermissionDenied("the TPM owner hierarchy has a password; coffer needs it empty to create its primary key");
    }
    return s.Fail("CreatePrimary (storage key)", rc);
  }
  s.FlushLater(handle);
  return handle;
}

Result<Bytes> MarshalPublic(const TPM2B_PUBLIC& pub) {
  std::array<uint8_t, sizeof(TPM2B_PUBLIC)> buf{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf.data(), buf.size(), &off) != TSS2_RC_SUCCESS) {
    return Internal("cannot marshal TPM2B_PUBLIC");
  }
  return Bytes(buf.begin(), buf.begin() + off);
}

Result<Bytes> MarshalPrivate(const TPM2B_PRIVATE& priv) {
  std::array<uint8_t, sizeof(TPM2B_PRIVATE)> buf{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, buf.data(), buf.size(), &off) != TSS2_RC_SUCCESS) {
    return Internal("cannot marshal TPM2B_PRIVATE");
  }
  return Bytes(buf.begin(), buf.begin() + off);
}

Result<ESYS_TR> NvHandle(Session& s, uint32_t index) {
  ESYS_TR tr = ESYS_TR_NONE;
  TSS2_RC rc = Esys_TR_FromTPMPublic(s.ctx(), index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  if (rc != TSS2_RC_SUCCESS) {
    if (TpmCode(rc) == TPM2_RC_HANDLE) return NotFound("NV index " + HexIndex(index) + " is not defined");
    return s.Fail("NV lookup of " + HexIndex(index), rc);
  }
  return tr;
}

}  // namespace

std::string HexIndex(uint32_t index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", index);
  return buf;
}

std::string ResolveTcti(std::string_view explicit_tcti) {
  if (!explicit_tcti.empty()) return std::string(explicit_tcti);
  for (const char* var : {"COFFER_TPM2_TCTI", "TPM2TOOLS_TCTI"}) {
    const char* v = std::getenv(var);
    if (v && *v) return v;
  }
  return "device:/dev/tpmrm0";
}

Result<PcrSelection> ParsePcrSelection(std::string_view text) {
  PcrSelection sel;
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument("PCR selection '" + std::string(text) + "' must look like sha256:0,7");
  }
  std::string_view bank = text.substr(0, colon);
  if (bank == "sha1") {
    sel.hash_alg = TPM2_ALG_SHA1;
  } else if (bank == "sha256") {
    sel.hash_alg = TPM2_ALG_SHA256;
  } else if (bank == "sha384") {
    sel.hash_alg = TPM2_ALG_SHA384;
  } else if (bank == "sha512") {
    sel.hash_alg = TPM2_ALG_SHA512;
  } else {
    return InvalidArgument("unknown PCR bank '" + std::string(bank) + "' (use sha1, sha256, sha384 or sha512)");
  }
  std::string_view list = text.substr(colon + 1);
  if (list.empty()) return InvalidArgument("PCR selection '" + std::string(text) + "' names no PCR");
  size_t i = 0;
  while (i <= list.size()) {
    size_t end = list.find_first_of(",+", i);
    if (end == std::string_view::npos) end = list.size();
    std::string_view num = list.substr(i, end - i);
    if (num.empty() || num.size() > 2 || num.find_first_not_of("0123456789") != std::string_view::npos) {
      return InvalidArgument("bad PCR number '" + std::string(num) + "' in '" + std::string(text) + "' (0..23)");
    }
    int n = std::stoi(std::string(num));
    if (n > 23) return InvalidArgument("PCR " + std::to_string(n) + " is out of range (0..23)");
    sel.mask |= 1u << n;
    i = end + 1;
  }
  return sel;
}

std::string PcrSelectionToString(const PcrSelection& pcrs) {
  if (pcrs.empty()) return "none";
  std::string s;
  switch (pcrs.hash_alg) {
    case TPM2_ALG_SHA1: s = "sha1:"; break;
    case TPM2_ALG_SHA256: s = "sha256:"; break;
    case TPM2_ALG_SHA384: s = "sha384:"; break;
    case TPM2_ALG_SHA512: s = "sha512:"; break;
    default: s = "alg" + std::to_string(pcrs.hash_alg) + ":";
  }
  bool first = true;
  for (int i = 0; i < 24; ++i) {
    if (!(pcrs.mask & (1u << i))) continue;
    if (!first) s += ",";
    s += std::to_string(i);
    first = false;
  }
  return s;
}

Result<SealedBlob> Tpm2::Seal(const SecretBytes& secret, const PcrSelection& pcrs) {
  if (secret.size() == 0 || secret.size() > 128) return InvalidArgument("a sealed secret must be 1..128 bytes");
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  COFFER_ASSIGN_OR_RETURN(ESYS_TR primary, StoragePrimary(*s));

  TPM2B_PUBLIC in_public{};
  TPMT_PUBLIC& p = in_public.publicArea;
  p.type = TPM2_ALG_KEYEDHASH;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA;
  if (pcrs.empty()) {
    p.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;  // empty authValue opens it
  } else {
    COFFER_ASSIGN_OR_RETURN(p.authPolicy, PcrPolicyDigest(*s, pcrs));  // only the PCR policy opens it
  }
  p.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;

  // Secret sensitive data is wiped from this stack copy on every path.
  struct Wiped {
    TPM2B_SENSITIVE_CREATE v{};
    ~Wiped() { explicit_bzero(&v, sizeof v); }
  } in_sensitive;
  in_sensitive.v.sensitive.data.size = uint16_t(secret.size());
  std::memcpy(in_sensitive.v.sensitive.data.buffer, secret.reveal().data(), secret.size());
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  EsysPtr<TPM2B_PRIVATE> out_private;
  EsysPtr<TPM2B_PUBLIC> out_public;
  COFFER_ASSIGN_OR_RETURN(ESYS_TR create_auth,
                          StartSession(*s, TPM2_SE_HMAC, primary, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT));
  TSS2_RC rc = Esys_Create(s->ctx(), primary, create_auth, ESYS_TR_NONE, ESYS_TR_NONE, &in_sensitive.v,
                           &in_public, &outside, &creation_pcr, out_private.out(), out_public.out(), nullptr, nullptr,
                           nullptr);
  if (rc != TSS2_RC_SUCCESS) return s->Fail("Create (sealed object)", rc);
  SealedBlob blob;
  blob.pcrs = pcrs;
  COFFER_ASSIGN_OR_RETURN(blob.public_area, MarshalPublic(*out_public.p));
  COFFER_ASSIGN_OR_RETURN(blob.private_area, MarshalPrivate(*out_private.p));
  return blob;
}

Result<SecretBytes> Tpm2::Unseal(const SealedBlob& blob) {
  TPM2B_PUBLIC pub{};
  TPM2B_PRIVATE priv{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob.public_area.data(), blob.public_area.size(), &off, &pub) !=
          TSS2_RC_SUCCESS ||
      off != blob.public_area.size()) {
    return InvalidArgument("sealed TPM object: malformed TPM2B_PUBLIC");
  }
  off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob.private_area.data(), blob.private_area.size(), &off, &priv) !=
          TSS2_RC_SUCCESS ||
      off != blob.private_area.size()) {
    return InvalidArgument("sealed TPM object: malformed TPM2B_PRIVATE");
  }
  if (pub.publicArea.type != TPM2_ALG_KEYEDHASH) return InvalidArgument("sealed TPM object is not a keyed-hash object");
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  COFFER_ASSIGN_OR_RETURN(ESYS_TR primary, StoragePrimary(*s));
  ESYS_TR object = ESYS_TR_NONE;
  TSS2_RC rc = Esys_Load(s->ctx(), primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &object);
  if (rc != TSS2_RC_SUCCESS) {
    uint32_t code = TpmCode(rc);
    if (code == TPM2_RC_INTEGRITY || code == TPM2_RC_SIZE || code == TPM2_RC_VALUE || code == TPM2_RC_KEY ||
        code == TPM2_RC_BINDING) {
      return Unauthenticated("the TPM behind '" + tcti_ +
                             "' cannot load the sealed key: it was sealed by a different TPM (or this TPM's owner "
                             "seed was cleared)");
    }
    return s->Fail("Load (sealed object)", rc);
  }
  s->FlushLater(object);
  ESYS_TR auth = ESYS_TR_NONE;
  if (blob.pcrs.empty()) {
    COFFER_ASSIGN_OR_RETURN(auth, StartSession(*s, TPM2_SE_HMAC, primary, TPMA_SESSION_ENCRYPT));
  } else {
    COFFER_ASSIGN_OR_RETURN(auth, PcrPolicySession(*s, blob.pcrs, false, primary, TPMA_SESSION_ENCRYPT));
  }
  EsysPtr<TPM2B_SENSITIVE_DATA> data;
  rc = Esys_Unseal(s->ctx(), object, auth, ESYS_TR_NONE, ESYS_TR_NONE, data.out());
  if (rc != TSS2_RC_SUCCESS) {
    uint32_t code = TpmCode(rc);
    if (code == TPM2_RC_POLICY_FAIL || code == TPM2_RC_PCR_CHANGED) {
      return Unauthenticated("the TPM refuses to unseal: PCR values " + PcrSelectionToString(blob.pcrs) +
                             " differ from those the key was sealed to (boot chain or configuration changed)");
    }
    if (code == TPM2_RC_AUTH_UNAVAILABLE || code == TPM2_RC_BAD_AUTH || code == TPM2_RC_AUTH_FAIL) {
      return Unauthenticated("the TPM refuses to unseal: authorization failed");
    }
    return s->Fail("Unseal", rc);
  }
  return SecretBytes::CopyOf(ByteSpan(data->buffer, data->size));
}

Result<Bytes> Tpm2::ReadPcr(uint16_t hash_alg, int pcr) {
  if (pcr < 0 || pcr > 23) return InvalidArgument("PCR index out of range");
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  TPML_PCR_SELECTION sel = ToTpml({hash_alg, 1u << pcr});
  EsysPtr<TPML_PCR_SELECTION> out_sel;
  EsysPtr<TPML_DIGEST> values;
  TSS2_RC rc = Esys_PCR_Read(s->ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, nullptr, out_sel.out(),
                             values.out());
  if (rc != TSS2_RC_SUCCESS) return s->Fail("PCR_Read", rc);
  if (values->count != 1) return NotFound("the TPM has no PCR " + std::to_string(pcr) + " in that bank");
  return Bytes(values->digests[0].buffer, values->digests[0].buffer + values->digests[0].size);
}

Status Tpm2::ExtendPcr(int pcr, uint16_t hash_alg, ByteSpan digest) {
  if (pcr < 0 || pcr > 23) return InvalidArgument("PCR index out of range");
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  TPML_DIGEST_VALUES v{};
  v.count = 1;
  v.digests[0].hashAlg = hash_alg;
  if (digest.size() > sizeof(v.digests[0].digest)) return InvalidArgument("PCR digest too long");
  std::memcpy(&v.digests[0].digest, digest.data(), digest.size());
  TSS2_RC rc = Esys_PCR_Extend(s->ctx(), ESYS_TR(ESYS_TR_PCR0 + pcr), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
  if (rc != TSS2_RC_SUCCESS) return s->Fail("PCR_Extend", rc);
  return Status::Ok();
}

Result<std::optional<Tpm2::NvInfo>> Tpm2::NvInfoOf(uint32_t index) {
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  auto tr = NvHandle(*s, index);
  if (!tr.ok()) {
    if (tr.status().code() == StatusCode::kNotFound) return std::optional<NvInfo>();
    return tr.status();
  }
  EsysPtr<TPM2B_NV_PUBLIC> pub;
  TSS2_RC rc = Esys_NV_ReadPublic(s->ctx(), *tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, pub.out(), nullptr);
  if (rc != TSS2_RC_SUCCESS) return s->Fail("NV_ReadPublic " + HexIndex(index), rc);
  NvInfo info;
  TPMA_NV a = pub->nvPublic.attributes;
  info.counter = ((a & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT) == TPM2_NT_COUNTER;
  info.written = (a & TPMA_NV_WRITTEN) != 0;
  info.size = pub->nvPublic.dataSize;
  return std::optional<NvInfo>(info);
}

namespace {
Status Define(const std::string& tcti, uint32_t index, TPMA_NV type_bits, uint16_t size) {
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti));
  TPM2B_AUTH auth{};
  TPM2B_NV_PUBLIC pub{};
  pub.nvPublic.nvIndex = index;
  pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
  pub.nvPublic.attributes = type_bits | TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA;
  pub.nvPublic.dataSize = size;
  ESYS_TR tr = ESYS_TR_NONE;
  TSS2_RC rc = Esys_NV_DefineSpace(s->ctx(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth,
                                   &pub, &tr);
  if (rc != TSS2_RC_SUCCESS) {
    uint32_t code = TpmCode(rc);
    if (code == TPM2_RC_NV_DEFINED) return AlreadyExists("NV index " + HexIndex(index) + " is already defined");
    if (code == TPM2_RC_NV_SPACE) return NoSpace("the TPM has no NV space left for index " + HexIndex(index));
    if (code == TPM2_RC_BAD_AUTH || code == TPM2_RC_AUTH_FAIL) {
      return PermissionDenied("defining NV index " + HexIndex(index) + " needs the TPM owner password (coffer uses an empty one)");
    }
    return s->Fail("NV_DefineSpace " + HexIndex(index), rc);
  }
  return Status::Ok();
}
}  // namespace

Status Tpm2::NvDefineCounter(uint32_t index) {
  return Define(tcti_, index, TPMA_NV(TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT), 8);
}

Status Tpm2::NvDefineOrdinary(uint32_t index, uint16_t size) {
  return Define(tcti_, index, TPMA_NV(TPM2_NT_ORDINARY << TPMA_NV_TPM2_NT_SHIFT), size);
}

Status Tpm2::NvUndefine(uint32_t index) {
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  COFFER_ASSIGN_OR_RETURN(ESYS_TR tr, NvHandle(*s, index));
  TSS2_RC rc = Esys_NV_UndefineSpace(s->ctx(), ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
  if (rc != TSS2_RC_SUCCESS) return s->Fail("NV_UndefineSpace " + HexIndex(index), rc);
  return Status::Ok();
}

Result<Bytes> Tpm2::NvRead(uint32_t index, uint16_t size) {
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  COFFER_ASSIGN_OR_RETURN(ESYS_TR tr, NvHandle(*s, index));
  EsysPtr<TPM2B_MAX_NV_BUFFER> data;
  TSS2_RC rc = Esys_NV_Read(s->ctx(), tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, size, 0, data.out());
  if (rc != TSS2_RC_SUCCESS) {
    if (TpmCode(rc) == TPM2_RC_NV_UNINITIALIZED) {
      return FailedPrecondition("NV index " + HexIndex(index) + " has never been written");
    }
    return s->Fail("NV_Read " + HexIndex(index), rc);
  }
  return Bytes(data->buffer, data->buffer + data->size);
}

Result<uint64_t> Tpm2::NvReadCounter(uint32_t index) {
  COFFER_ASSIGN_OR_RETURN(Bytes b, NvRead(index, 8));
  if (b.size() != 8) return Internal("NV counter read returned " + std::to_string(b.size()) + " bytes");
  return GetBe64(b.data());
}

Status Tpm2::NvIncrement(uint32_t index) {
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  COFFER_ASSIGN_OR_RETURN(ESYS_TR tr, NvHandle(*s, index));
  TSS2_RC rc = Esys_NV_Increment(s->ctx(), tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
  if (rc != TSS2_RC_SUCCESS) return s->Fail("NV_Increment " + HexIndex(index), rc);
  return Status::Ok();
}

Status Tpm2::NvWrite(uint32_t index, ByteSpan data) {
  TPM2B_MAX_NV_BUFFER buf{};
  if (data.size() > sizeof(buf.buffer)) return InvalidArgument("NV write too large");
  buf.size = uint16_t(data.size());
  std::memcpy(buf.buffer, data.data(), data.size());
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  COFFER_ASSIGN_OR_RETURN(ESYS_TR tr, NvHandle(*s, index));
  TSS2_RC rc = Esys_NV_Write(s->ctx(), tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf, 0);
  if (rc != TSS2_RC_SUCCESS) return s->Fail("NV_Write " + HexIndex(index), rc);
  return Status::Ok();
}

Result<std::array<uint8_t, 32>> Tpm2::Hmac(std::string_view label, const PcrSelection& pcrs, ByteSpan data) {
  TPM2B_MAX_BUFFER buf{};
  if (data.size() > sizeof(buf.buffer)) return InvalidArgument("HMAC input too large");
  buf.size = uint16_t(data.size());
  std::memcpy(buf.buffer, data.data(), data.size());
  COFFER_ASSIGN_OR_RETURN(auto s, Session::Open(tcti_));
  TPM2B_SENSITIVE_CREATE in_sensitive{};
  TPM2B_PUBLIC in_public{};
  TPMT_PUBLIC& p = in_public.publicArea;
  p.type = TPM2_ALG_KEYEDHASH;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes =
      TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
      TPMA_OBJECT_NODA;
  if (pcrs.empty()) {
    p.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
  } else {
    COFFER_ASSIGN_OR_RETURN(p.authPolicy, PcrPolicyDigest(*s, pcrs));
  }
  p.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
  p.parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
  // The label makes this key distinct from any other keyed-hash primary (unique is part of the seed KDF).
  Bytes digest = ToBytes(label);
  if (digest.size() > 32) digest.resize(32);
  p.unique.keyedHash.size = uint16_t(digest.size());
  std::memcpy(p.unique.keyedHash.buffer, digest.data(), digest.size());
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  ESYS_TR key = ESYS_TR_NONE;
  TSS2_RC rc = Esys_CreatePrimary(s->ctx(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                  &in_sensitive, &in_public, &outside, &creation_pcr, &key, nullptr, nullptr, nullptr,
                                  nullptr);
  if (rc != TSS2_RC_SUCCESS) return s->Fail("CreatePrimary (HMAC key)", rc);
  s->FlushLater(key);
  ESYS_TR auth = ESYS_TR_PASSWORD;
  if (!pcrs.empty()) {
    COFFER_ASSIGN_OR_RETURN(auth, PcrPolicySession(*s, pcrs, false));
  }
  EsysPtr<TPM2B_DIGEST> mac;
  rc = Esys_HMAC(s->ctx(), key, auth, ESYS_TR_NONE, ESYS_TR_NONE, &buf, TPM2_ALG_SHA256, mac.out());
  if (rc != TSS2_RC_SUCCESS) {
    if (TpmCode(rc) == TPM2_RC_POLICY_FAIL || TpmCode(rc) == TPM2_RC_PCR_CHANGED) {
      return Unauthenticated("the TPM refuses the anchor's MAC key: PCR values " + PcrSelectionToString(pcrs) +
                             " differ from those it is bound to");
    }
    return s->Fail("HMAC", rc);
  }
  if (mac->size != 32) return Internal("TPM HMAC returned " + std::to_string(mac->size) + " bytes");
  std::array<uint8_t, 32> out;
  std::memcpy(out.data(), mac->buffer, 32);
  return out;
}

}  // namespace coffer::tpm

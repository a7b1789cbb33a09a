//! A tiny DER walker: just enough X.509 to read a certificate's validity window, its
//! issuer/subject names and its public key, without an X.509 parser dependency.

use anyhow::{Context, Result, anyhow, bail, ensure};
use rcgen::{DistinguishedName, DnType, DnValue};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION_TAG: u8 = 0xa0;

/// One DER element: its tag, its content octets and its whole encoding.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    raw: &'a [u8],
}

/// Reads one element from the front of `input`, returning it and the rest.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input
        .split_first()
        .ok_or_else(|| anyhow!("truncated DER"))?;
    ensure!(tag & 0x1f != 0x1f, "unsupported DER tag");
    let (&first, mut rest) = rest.split_first().ok_or_else(|| anyhow!("truncated DER"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        ensure!((1..=4).contains(&n) && rest.len() >= n, "bad DER length");
        let (bytes, r) = rest.split_at(n);
        rest = r;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    ensure!(rest.len() >= len, "truncated DER");
    let header = input.len() - rest.len();
    let (content, rest) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..header + len],
        },
        rest,
    ))
}

/// Reads one element and checks its tag.
fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(Tlv<'a>, &'a [u8])> {
    let (tlv, rest) = read_tlv(input).with_context(|| format!("reading {what}"))?;
    ensure!(tlv.tag == tag, "unexpected DER tag for {what}");
    Ok((tlv, rest))
}

/// The parts of a certificate this crate needs.
pub(crate) struct CertInfo<'a> {
    /// DER of the issuer Name.
    pub issuer: &'a [u8],
    /// DER of the subject Name.
    pub subject: &'a [u8],
    /// DER of the SubjectPublicKeyInfo.
    pub spki: &'a [u8],
    /// Start of the validity window.
    pub not_before: OffsetDateTime,
    /// End of the validity window.
    pub not_after: OffsetDateTime,
}

/// Walks a DER certificate down to the fields of [`CertInfo`].
pub(crate) fn parse_cert(der: &[u8]) -> Result<CertInfo<'_>> {
    let (cert, _) = expect(der, SEQUENCE, "certificate")?;
    let (tbs, _) = expect(cert.content, SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs.content;
    let (first, r) = read_tlv(rest)?;
    if first.tag == VERSION_TAG {
        rest = r;
    }
    let (_, rest) = expect(rest, INTEGER, "serialNumber")?;
    let (_, rest) = expect(rest, SEQUENCE, "signature algorithm")?;
    let (issuer, rest) = expect(rest, SEQUENCE, "issuer")?;
    let (validity, rest) = expect(rest, SEQUENCE, "validity")?;
    let (subject, rest) = expect(rest, SEQUENCE, "subject")?;
    let (spki, _) = expect(rest, SEQUENCE, "subjectPublicKeyInfo")?;
    let (nb, vrest) = read_tlv(validity.content)?;
    let (na, _) = read_tlv(vrest)?;
    Ok(CertInfo {
        issuer: issuer.raw,
        subject: subject.raw,
        spki: spki.raw,
        not_before: parse_time(&nb).context("reading notBefore")?,
        not_after: parse_time(&na).context("reading notAfter")?,
    })
}

/// Decodes an X.509 UTCTime or GeneralizedTime (DER form: seconds and `Z` mandatory).
fn parse_time(tlv: &Tlv<'_>) -> Result<OffsetDateTime> {
    let s = std::str::from_utf8(tlv.content).context("time is not ASCII")?;
    ensure!(s.is_ascii(), "time is not ASCII");
    let (year, rest) = match (tlv.tag, s.len()) {
        (UTC_TIME, 13) => {
            let yy: i32 = num(&s[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        (GENERALIZED_TIME, 15) => (num(&s[..4])?, &s[4..]),
        _ => bail!("unsupported time encoding"),
    };
    ensure!(rest.ends_with('Z'), "time is not in UTC");
    let month = Month::try_from(num::<u8>(&rest[0..2])?)?;
    let date = Date::from_calendar_date(year, month, num(&rest[2..4])?)?;
    let t = Time::from_hms(num(&rest[4..6])?, num(&rest[6..8])?, num(&rest[8..10])?)?;
    Ok(PrimitiveDateTime::new(date, t).assume_utc())
}

/// Parses a run of ASCII digits.
fn num<T: std::str::FromStr>(s: &str) -> Result<T> {
    ensure!(
        s.bytes().all(|b| b.is_ascii_digit()),
        "non-digit in time value"
    );
    s.parse().map_err(|_| anyhow!("bad number in time value"))
}

/// Decodes a DER Name into rcgen's [`DistinguishedName`] (single-valued RDNs with UTF8,
/// Printable or IA5 strings: what rcgen and Docker Machine write). Callers must check that
/// re-encoding gives the same bytes, since rcgen cannot represent every Name.
pub(crate) fn parse_name(name_der: &[u8]) -> Result<DistinguishedName> {
    let (name, _) = expect(name_der, SEQUENCE, "Name")?;
    let mut dn = DistinguishedName::new();
    let mut rdns = name.content;
    while !rdns.is_empty() {
        let (rdn, r) = expect(rdns, SET, "RDN")?;
        rdns = r;
        let (atv, extra) = expect(rdn.content, SEQUENCE, "attribute")?;
        ensure!(extra.is_empty(), "multi-valued RDNs are not supported");
        let (oid, r) = expect(atv.content, OID, "attribute type")?;
        let (value, _) = read_tlv(r)?;
        let text = std::str::from_utf8(value.content)
            .context("attribute value is not valid UTF-8")?
            .to_owned();
        let value = match value.tag {
            UTF8_STRING => DnValue::Utf8String(text),
            PRINTABLE_STRING => DnValue::PrintableString(text.try_into()?),
            IA5_STRING => DnValue::Ia5String(text.try_into()?),
            _ => bail!("unsupported string type in Name"),
        };
        dn.push(DnType::from_oid(&parse_oid(oid.content)?), value);
    }
    Ok(dn)
}

/// Decodes OID content octets into arcs.
fn parse_oid(bytes: &[u8]) -> Result<Vec<u64>> {
    let mut arcs = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        ensure!(acc >> 57 == 0, "OID arc too large");
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else {
            ensure!(i + 1 < bytes.len(), "truncated OID");
        }
    }
    ensure!(!arcs.is_empty(), "empty OID");
    Ok(arcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_decoding() {
        // 2.5.4.10 (organizationName) and 1.2.840.10045.2.1 (ecPublicKey).
        assert_eq!(parse_oid(&[0x55, 0x04, 0x0a]).unwrap(), vec![2, 5, 4, 10]);
        assert_eq!(
            parse_oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]).unwrap(),
            vec![1, 2, 840, 10045, 2, 1]
        );
    }

    #[test]
    fn time_decoding() {
        let utc = Tlv {
            tag: UTC_TIME,
            content: b"491231235959Z",
            raw: &[],
        };
        assert_eq!(parse_time(&utc).unwrap().year(), 2049);
        let gen_time = Tlv {
            tag: GENERALIZED_TIME,
            content: b"20500101000000Z",
            raw: &[],
        };
        let t = parse_time(&gen_time).unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (2050, Month::January, 1));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_cert(&[0x30, 0x05, 0x01]).is_err());
        assert!(parse_cert(&[]).is_err());
    }
}

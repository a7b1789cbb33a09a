//! The NoCloud seed of a VM's first boot: `user-data` (`#cloud-config`: the user dmw logs
//! in as, in a group of its name that cloud-init makes unless the image has it — an image
//! with docker.io has a `docker` group, and a user group of the same name would make
//! useradd fail — with passwordless sudo, no password login, the machine's SSH public key, the
//! hostname) and `meta-data` (instance id, hostname) on a small FAT volume labelled
//! `CIDATA`, which cloud-init finds by its label. Made in Rust inside the driver: no
//! genisoimage, cloud-localds or mkfs.
//!
//! Every value is checked before it is written (the hostname is a machine name, the user a
//! plain user name, the key one OpenSSH public key line) and written as a JSON string,
//! which YAML reads as the same string: nothing in a value can add YAML structure.

use std::io::{Cursor, Write};

use dmw_guest::{Error, Result};

/// The volume label cloud-init's NoCloud data source looks for.
pub const LABEL: &str = "CIDATA";

/// The size of the seed volume (FAT12): plenty for the two small files.
const VOLUME_BYTES: usize = 1024 * 1024;

/// What a VM is told on its first boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// Instance id: cloud-init runs its first-boot modules once per id.
    pub instance_id: String,
    /// The machine's hostname (its dmw name).
    pub hostname: String,
    /// The user dmw logs in as (passwordless sudo, no password login).
    pub user: String,
    /// The machine's SSH public key (OpenSSH format).
    pub ssh_public_key: String,
    /// The VM's second NIC on the user's shared network, if any.
    pub shared: Option<SharedNic>,
}

/// A NIC on the shared network: its MAC address and its static address (`A.B.C.D/NN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedNic {
    /// `52:54:00:xx:xx:xx`.
    pub mac: String,
    /// The address with its prefix length, e.g. `10.77.1.2/16`.
    pub address: String,
}

fn bad(what: String) -> Error {
    Error::InvalidInput(what)
}

/// A machine name (Docker Machine's rule: alphanumeric first, then alphanumerics, `-`, `.`).
fn is_machine_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && name.len() <= 253
}

/// One OpenSSH public key line: `TYPE BASE64 [COMMENT]`, printable ASCII.
fn is_public_key(key: &str) -> bool {
    let mut parts = key.split(' ');
    let kind = parts.next().unwrap_or_default();
    let data = parts.next().unwrap_or_default();
    let kinds = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    kinds.contains(&kind)
        && data.len() >= 16
        && data
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        && key.len() <= 16 * 1024
        && key.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

impl Seed {
    /// Check every value (see the module documentation).
    pub fn validate(&self) -> Result<()> {
        if !is_machine_name(&self.hostname) {
            return Err(bad(format!(
                "the hostname {:?} is not a valid machine name",
                self.hostname
            )));
        }
        let user_ok = !self.user.is_empty()
            && self.user.len() <= 32
            && self
                .user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            && !self.user.starts_with('-');
        if !user_ok {
            return Err(bad(format!(
                "the VM user {:?} is not a user name",
                self.user
            )));
        }
        let id_ok = !self.instance_id.is_empty()
            && self.instance_id.len() <= 128
            && self
                .instance_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !id_ok {
            return Err(bad(format!(
                "the instance id {:?} is not [A-Za-z0-9._-]",
                self.instance_id
            )));
        }
        if let Some(nic) = &self.shared {
            let mac_ok = nic.mac.len() == 17
                && nic.mac.chars().enumerate().all(|(i, c)| {
                    if i % 3 == 2 {
                        c == ':'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                });
            let addr_ok = nic.address.len() <= 18
                && nic
                    .address
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == '/');
            if !mac_ok || !addr_ok {
                return Err(bad(format!("bad shared NIC {nic:?}")));
            }
        }
        if !is_public_key(self.ssh_public_key.trim()) {
            return Err(bad(
                "the SSH public key is not one OpenSSH public key line".into()
            ));
        }
        Ok(())
    }

    /// The `user-data` file (`#cloud-config`).
    pub fn user_data(&self) -> Result<String> {
        self.validate()?;
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        Ok(format!(
            "#cloud-config\n\
             hostname: {host}\n\
             preserve_hostname: false\n\
             ssh_pwauth: false\n\
             disable_root: true\n\
             users:\n  \
               - name: {user}\n    \
                 no_user_group: true\n    \
                 groups: [{user}]\n    \
                 sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    \
                 shell: /bin/sh\n    \
                 lock_passwd: true\n    \
                 ssh_authorized_keys:\n      \
                   - {key}\n{shared}",
            host = q(&self.hostname),
            user = q(&self.user),
            key = q(self.ssh_public_key.trim()),
            shared = self.shared_config(),
        ))
    }

    /// The shared NIC's configuration: a systemd-networkd file matching its MAC with the
    /// static address (before the image's DHCP-on-every-NIC file), applied at once.
    fn shared_config(&self) -> String {
        let Some(nic) = &self.shared else {
            return String::new();
        };
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let unit = format!(
            "[Match]\nMACAddress={}\n\n[Network]\nAddress={}\nLinkLocalAddressing=no\n",
            nic.mac, nic.address
        );
        let apply = format!(
            "networkctl reload; for i in /sys/class/net/*; do [ \"$(cat $i/address)\" = {} ] && networkctl reconfigure ${{i##*/}}; done; true",
            nic.mac
        );
        format!(
            "write_files:\n  - path: /etc/systemd/network/05-dmw-shared.network\n    content: {}\nruncmd:\n  - [sh, -c, {}]\n",
            q(&unit),
            q(&apply)
        )
    }

    /// The `meta-data` file.
    pub fn meta_data(&self) -> Result<String> {
        self.validate()?;
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        Ok(format!(
            "instance-id: {}\nlocal-hostname: {}\n",
            q(&self.instance_id),
            q(&self.hostname)
        ))
    }

    /// The seed volume: a FAT12 image labelled [`LABEL`] holding `user-data` and
    /// `meta-data`, to attach to the VM as a drive.
    pub fn fat_image(&self) -> Result<Vec<u8>> {
        let user_data = self.user_data()?;
        let meta_data = self.meta_data()?;
        let failed = |what: &str, e: std::io::Error| Error::Failed(format!("{what}: {e}"));
        let mut label = [b' '; 11];
        label[..LABEL.len()].copy_from_slice(LABEL.as_bytes());
        let mut disk = Cursor::new(vec![0u8; VOLUME_BYTES]);
        fatfs::format_volume(
            &mut disk,
            fatfs::FormatVolumeOptions::new()
                .fat_type(fatfs::FatType::Fat12)
                .volume_label(label),
        )
        .map_err(|e| failed("cannot format the seed volume", e))?;
        disk.set_position(0);
        {
            let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new())
                .map_err(|e| failed("cannot open the seed volume", e))?;
            for (name, text) in [("user-data", &user_data), ("meta-data", &meta_data)] {
                let write = || -> std::io::Result<()> {
                    let mut f = fs.root_dir().create_file(name)?;
                    f.truncate()?;
                    f.write_all(text.as_bytes())?;
                    f.flush()
                };
                write()
                    .map_err(|e| failed(&format!("cannot write {name} to the seed volume"), e))?;
            }
            fs.unmount()
                .map_err(|e| failed("cannot close the seed volume", e))?;
        }
        Ok(disk.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKh1v0HBDXzZbNQXbQbbK4eEpMN+eG7oBkR8Tp0Sx7Hc dmw vm1";

    fn seed() -> Seed {
        Seed {
            instance_id: "dmw-vm1-1".into(),
            hostname: "vm1".into(),
            user: "docker".into(),
            ssh_public_key: KEY.into(),
            shared: None,
        }
    }

    #[test]
    fn the_volume_holds_both_files_under_the_cidata_label() {
        let s = seed();
        let image = s.fat_image().expect("image");
        let fs = fatfs::FileSystem::new(Cursor::new(image.clone()), fatfs::FsOptions::new())
            .expect("a FAT volume");
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat12);
        assert_eq!(fs.volume_label(), LABEL);
        let read = |name: &str| {
            let mut text = String::new();
            fs.root_dir()
                .open_file(name)
                .expect(name)
                .read_to_string(&mut text)
                .expect("read");
            text
        };
        assert_eq!(read("user-data"), s.user_data().expect("user-data"));
        assert_eq!(read("meta-data"), s.meta_data().expect("meta-data"));
        // blkid finds the label in the boot sector (FAT12/16: offset 43).
        assert_eq!(&image[43..54], b"CIDATA     ");
        // util-linux's blkid — what cloud-init uses to find the seed — sees a vfat CIDATA.
        let file = std::env::temp_dir().join(format!("dmw-seed-test-{}.img", std::process::id()));
        std::fs::write(&file, &image).expect("write");
        let out = std::process::Command::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(&file)
            .output()
            .expect("blkid (util-linux) runs");
        let _ = std::fs::remove_file(&file);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("LABEL=CIDATA") && text.contains("TYPE=vfat"),
            "{text}"
        );
        let user_data = read("user-data");
        assert!(user_data.starts_with("#cloud-config\n"), "{user_data}");
        assert!(user_data.contains("- \"ssh-ed25519 AAAA"), "{user_data}");
        assert!(user_data.contains("name: \"docker\""), "{user_data}");
    }

    #[test]
    fn a_shared_nic_gets_its_address_by_mac() {
        let mut s = seed();
        s.shared = Some(SharedNic {
            mac: "52:54:00:77:01:02".into(),
            address: "10.77.1.2/16".into(),
        });
        let text = s.user_data().expect("user-data");
        assert!(text.contains("MACAddress=52:54:00:77:01:02"), "{text}");
        assert!(text.contains("Address=10.77.1.2/16"), "{text}");
        s.shared = Some(SharedNic {
            mac: "52:54:00:77:01:0\n".into(),
            address: "10.77.1.2/16".into(),
        });
        assert!(s.user_data().is_err());
    }

    #[test]
    fn values_cannot_add_yaml() {
        let mut s = seed();
        s.ssh_public_key = format!("{KEY}\nruncmd: [\"touch /owned\"]");
        assert!(s.user_data().is_err(), "a second line in the key");
        let mut s = seed();
        s.user = "docker\nruncmd: x".into();
        assert!(s.fat_image().is_err());
        let mut s = seed();
        s.hostname = "vm1: {x}".into();
        assert!(s.meta_data().is_err());
        let mut s = seed();
        s.ssh_public_key = "not a key".into();
        assert!(s.validate().is_err());
        let mut s = seed();
        s.instance_id = "id\"".into();
        assert!(s.validate().is_err());
    }
}

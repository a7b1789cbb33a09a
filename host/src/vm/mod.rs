//! Local virtual machines, the host's part: images built from a package mirror
//! (`dmw image build`) and the QMP client the `files` capability lends to the qemu driver
//! (guest-drivers/qemu, which boots them through the `process` capability), and the
//! verified, cached downloads of images the `files` capability does for it.

pub mod download;
pub mod image;
pub mod qcow2;
pub mod qmp;

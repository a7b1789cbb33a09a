//! Local virtual machines, the host's part: images built from a package mirror
//! (`dmw image build`) and the QMP client the `files` capability lends to the qemu driver
//! (guest-drivers/qemu, which boots them through the `process` capability).

pub mod image;
pub mod qmp;

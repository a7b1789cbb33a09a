//! Local virtual machines, the host's part: images built from a package mirror
//! (`dmw image build`), verified and cached downloads of images (`files`), the QEMU command
//! line the `vm` capability runs a machine's VM with, the image header checks, and the
//! QMP client.

pub mod download;
pub mod image;
pub mod qcow2;
pub mod qemu;
pub mod qmp;

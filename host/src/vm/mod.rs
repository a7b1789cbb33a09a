//! Local virtual machines (the QEMU driver's host side): images built from a package
//! mirror, first-boot configuration for cloud images, and booting them under QEMU.

pub mod accel;
pub mod image;
pub mod qemu;
pub mod seed;

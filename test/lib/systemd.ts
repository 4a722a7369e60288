// What `systemctl show` prints for two nspawn units, one running and one failed.
export const SHOW = `Result=success
Id=systemd-nspawn@a.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
ActiveEnterTimestamp=@1795697980

Result=exit-code
Id=systemd-nspawn@b.service
LoadState=loaded
ActiveState=failed
SubState=failed
UnitFileState=disabled
ActiveEnterTimestamp=
`;

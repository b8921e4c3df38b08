# The Debian package (make deb), built into a temporary folder and read,
# never installed (make test-deb installs it): its control file depends on
# exactly the nginx ABI the installed nginx provides and on the package of
# each library the module links; it holds Debian's module layout, the
# maintainer scripts, and a sample site that Debian's nginx accepts.

use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::More;

# make test-asan's sanitizers are for nginx, not for dpkg's tools
delete @ENV{qw(LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS)};

my $so_name = 'ngx_http_msgbus_module.so';
my $pkg = 'libnginx-mod-http-msgbus';

plan skip_all => "no .build/default/$so_name: make build"
    unless -f ".build/default/$so_name";

my $out = tempdir(CLEANUP => 1);

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return <$fh>;
}

my $deb = `DEB_OUT='$out' t/util/deb/build.sh 2>'$out/build.log'`;
chomp $deb;
is($?, 0, 't/util/deb/build.sh builds the package')
    or BAIL_OUT('make deb fails: ' . slurp("$out/build.log"));

my $arch = `dpkg --print-architecture`;
chomp $arch;
my ($upstream) = slurp('ngx_http_msgbus_module/http/ngx_http_msgbus_module.h')
    =~ /^#define NGX_HTTP_MSGBUS_VERSION\s+"([^"]+)"/m;

sub field { my $v = `dpkg-deb -f '$deb' $_[0]`; chomp $v; return $v }

is(field('Package'), $pkg, 'Package');
like(field('Version'), qr/^\Q$upstream\E-\d+$/,
     "Version: the module's NGX_HTTP_MSGBUS_VERSION ($upstream), a revision");
is(field('Architecture'), $arch, 'Architecture: this machine');
like($deb, qr{/\Q${pkg}_\E\Q@{[field('Version')]}\E_\Q$arch\E\.deb$},
     'named package_version_arch.deb');

# Depends: name => the rest ("(>= 1.23.1)")
my %depends = map { /^\s*(\S+)\s*(.*)$/ ? ($1 => $2) : () }
              split /,/, field('Depends');

my ($nginx) = `dpkg -S /usr/sbin/nginx` =~ /^([^:\s]+)/;
my @abi = `dpkg-query -W -f='\${Provides}\\n' $nginx nginx-common 2>/dev/null`
          =~ /(nginx-abi-[^\s,]+)/g;
is(scalar @abi, 1, "the package of /usr/sbin/nginx ($nginx) provides one ABI (@abi)");
ok(exists $depends{$abi[0]}, "Depends on exactly $abi[0]");
is(scalar(grep { /^nginx-abi-/ } keys %depends), 1, '... and no other');

# the package of each library the staged module links
my $so = "$out/debian/$pkg/usr/lib/nginx/modules/$so_name";
my @needed = `objdump -p '$so'` =~ /^\s*NEEDED\s+(\S+)/mg;
ok(@needed >= 4, "the module links @needed");
my %want = ($abi[0] => 1);
for my $lib (@needed) {
    my ($path) = `ldconfig -p` =~ /^\s*\Q$lib\E \([^)]*x86-64[^)]*\) => (\S+)/m;
    ($path) = `ldconfig -p` =~ /^\s*\Q$lib\E \(.*\) => (\S+)/m unless $path;
    my $owner;
    for my $p ($path, "/usr$path") {
        last if $owner;
        ($owner) = `dpkg -S '$p' 2>/dev/null` =~ /^([^:\s]+)/;
    }
    ok($owner, "$lib is $path, of package " . ($owner // '?'));
    next unless $owner;
    $want{$owner} = 1;
    like($depends{$owner} // 'missing', qr/^\(>= [^)]+\)$/,
         "Depends on $owner with its version");
}
is(join(' ', sort keys %depends), join(' ', sort keys %want),
   'Depends: the ABI and the libraries, nothing else');

# files
my %files = map { m{ \./(\S+)$} ? ($1 => 1) : () } `dpkg-deb -c '$deb'`;
for my $f ("usr/lib/nginx/modules/$so_name",
           'usr/share/nginx/modules-available/mod-http-msgbus.conf',
           "usr/share/doc/$pkg/copyright",
           "usr/share/doc/$pkg/changelog.Debian.gz",
           "usr/share/doc/$pkg/README.Debian",
           "usr/share/doc/$pkg/examples/msgbus-site.conf")
{
    ok($files{$f}, "ships /$f");
}
unlike(`objdump -h '$so'`, qr/\.debug_info/, 'the module is stripped');
like(`objdump -T '$so'`, qr/\bngx_http_msgbus_module\b/,
     '... and exports its module');
is(slurp("$out/debian/$pkg/usr/share/nginx/modules-available/mod-http-msgbus.conf"),
   "load_module modules/$so_name;\n", 'mod-http-msgbus.conf loads it');

my $control = `dpkg-deb -I '$deb'`;
for my $script (qw(postinst prerm postrm)) {
    like($control, qr/^\s*\d+ bytes,\s+\d+ lines\s+\*\s+$script\s/m,
         "$script, executable");
    my $text = slurp("$out/debian/$pkg/DEBIAN/$script");
    like($text, qr{/etc/nginx/modules-enabled/50-\$conf|50-mod-http-msgbus\.conf},
         "$script handles 50-mod-http-msgbus.conf");
    is(system('sh', '-n', "$out/debian/$pkg/DEBIAN/$script"), 0,
       "$script is valid sh");
}

# the sample site, as a site of Debian's nginx.conf: inside http {}
my $site = "$out/debian/$pkg/usr/share/doc/$pkg/examples/msgbus-site.conf";
my $text = slurp($site);
like($text, qr{location /v2/ \{\s*msgbus;\s*\}}, 'the site serves /v2/');
like($text, qr{^msgbus_mongodb "mongodb://127\.0\.0\.1:27017/}m,
     '... from the store at 127.0.0.1:27017');
like($text, qr{msgbus_status;\s*allow 127\.0\.0\.1;.*deny all;}s,
     '... its status for this host only');
mkdir "$out/logs";
open my $conf, '>', "$out/nginx.conf" or die $!;
print $conf "load_module $so;\nerror_log $out/logs/error.log;\n",
            "pid $out/logs/nginx.pid;\nevents {}\n",
            "http {\n    include $site;\n}\n";
close $conf;
my $t = `nginx -t -p '$out/' -c '$out/nginx.conf' 2>&1`;
is($?, 0, 'nginx -t accepts the site with the packaged module') or diag($t);

done_testing();

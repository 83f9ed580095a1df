// Nimbus JOSE + JWT, the library under Spring Security's resource server, verifies a
// tessera token through the JWKS, configured as a Java resource server would be.
//
//   java -cp 'target/deps/*' NimbusVerify.java JWKS_URL ALG TYP AUDIENCE ISSUER < token
//
// Prints the verified claims; exits 1 with the reason on stderr when Nimbus refuses
// the token (or cannot verify its algorithm at all: EdDSA needs Google Tink, which a
// resource server does not have unless it adds it).
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import java.net.URI;
import java.util.HashSet;
import java.util.List;

public class NimbusVerify {
    public static void main(String[] args) throws Exception {
        String token = new String(System.in.readAllBytes()).trim();
        JWKSource<SecurityContext> keys =
                JWKSourceBuilder.create(URI.create(args[0]).toURL()).retrying(false).build();
        DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();
        processor.setJWSTypeVerifier(new DefaultJOSEObjectTypeVerifier<>(new JOSEObjectType(args[2])));
        processor.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.parse(args[1]), keys));
        processor.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>(
                args[3],
                new JWTClaimsSet.Builder().issuer(args[4]).build(),
                new HashSet<>(List.of("sub", "exp", "iat"))));
        try {
            JWTClaimsSet claims = processor.process(token, null);
            System.out.println(claims.toString());
        } catch (Throwable refused) {
            System.err.println(refused.getClass().getName() + ": " + refused.getMessage());
            System.exit(1);
        }
    }
}
